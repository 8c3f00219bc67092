"""Datasets in runs on the local target: read-only views with no copy, copies when asked,
tabular inputs, output datasets uploaded and registered on completion, lineage."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from helpers import write_files
from jobs import log_of, seen, write_job
from services import S3Server

from ferry.cli.main import main as cli_main
from ferry.data import Dataset, OutputFileDatasetConfig
from ferry.experiment import Experiment
from ferry.script_run_config import ScriptRunConfig


def _submit(ws: Any, source: Path, arguments: list[Any], **variables: str) -> Any:
    config = ScriptRunConfig(str(source), "job.py", arguments=arguments)
    config.run_config.environment_variables.update(variables)
    run = Experiment(ws, "data").submit(config)
    run.wait_for_completion(raise_on_error=False)
    return run


@pytest.fixture
def registered(workspace: Any, sample: Path) -> Any:
    ds = workspace.get_default_datastore()
    ds.upload(str(sample), "s", show_progress=False)
    return Dataset.File.from_files((ds, "s/")).register(workspace, "mnist")


def test_a_mounted_input_is_a_read_only_view_with_no_copy(
    workspace: Any, registered: Any, awkward_dir: Path, sample: Path
) -> None:
    ds = workspace.get_default_datastore()
    one = Dataset.File.from_files((ds, "s/a.csv"))
    run = _submit(
        workspace, write_job(awkward_dir / "src"),
        ["--data", registered.as_named_input("mnist").as_mount(),
         "--one", one.as_named_input("extra").as_download()],
    )  # fmt: skip
    assert run.get_status() == "Completed", log_of(run)
    job = seen(run)
    view = Path(job["argv"][1])
    assert view == run.run_dir / "inputs" / "mnist" == Path(job["inputs"]["mnist"])
    assert job["read"]["mnist"] == {
        "a.csv": "x,y\n1,2\n3,4\n", "b.csv": "x,y\n5,6\n", "nested/deep/c.txt": "hello",
        "with space é.txt": "unicode",
    }  # fmt: skip
    for path in view.rglob("*"):  # every file a link into the blob store: nothing copied
        if not path.is_dir():
            assert path.is_symlink() and Path(os.readlink(path)).is_relative_to(
                workspace.blobs.root
            )
    single = Path(job["argv"][3])
    assert single.name == "a.csv" and single.read_text() == "x,y\n1,2\n3,4\n"
    assert not single.is_symlink()  # as_download(): a writable copy
    variables = job["variables"]
    assert variables["mnist"] == str(view) and variables["AZUREML_DATAREFERENCE_mnist"] == str(view)
    assert variables["AZUREML_DATASET_ENVIRONMENT_VARS"] == "mnist:mount,extra:download"


def test_paths_on_compute_are_honoured(
    workspace: Any, registered: Any, awkward_dir: Path, tmp_path: Path
) -> None:
    absolute = tmp_path / "data here"
    run = _submit(
        workspace, write_job(awkward_dir / "src"),
        [registered.as_named_input("mnist").as_mount(str(absolute)),
         registered.as_named_input("extra").as_download("copied/data")],
    )  # fmt: skip
    assert run.get_status() == "Completed", log_of(run)
    job = seen(run)
    assert job["argv"][0] == str(absolute)
    assert job["argv"][1] == str(run.run_dir / "wd" / "copied" / "data")
    assert job["read"]["extra"]["b.csv"] == "x,y\n5,6\n"
    assert not absolute.exists()  # made for the run, removed after it
    write_files(absolute, {"mine.txt": "someone's data"})
    refused = _submit(
        workspace, awkward_dir / "src", [registered.as_named_input("mnist").as_mount(str(absolute))]
    )
    assert refused.get_status() == "Failed"
    assert "exists and is not empty" in refused.get_details()["error"]["error"]["message"]
    assert (absolute / "mine.txt").read_text() == "someone's data"


def test_a_tabular_input_gives_its_rows_in_the_job(
    workspace: Any, sample: Path, awkward_dir: Path
) -> None:
    ds = workspace.get_default_datastore()
    ds.upload(str(sample), "s", show_progress=False)
    table = Dataset.Tabular.from_delimited_files((ds, "s/*.csv")).take(2)
    run = _submit(workspace, write_job(awkward_dir / "src"), [table.as_named_input("rows")])
    assert run.get_status() == "Completed", log_of(run)
    assert seen(run)["inputs"]["rows"] == {"tabular": {"x": [1, 3], "y": [2, 4]}}


def test_outputs_are_uploaded_and_registered_when_the_run_completes(
    workspace: Any, registered: Any, s3_store: Any, s3: S3Server, awkward_dir: Path
) -> None:
    source = write_job(awkward_dir / "src")
    out = OutputFileDatasetConfig("prepared", destination=(s3_store, "out/{run-id}/{output-name}"))
    arguments = [
        "--in",
        registered.as_named_input("mnist"),
        "--out",
        out.register_on_complete("prepared"),
    ]
    first = _submit(workspace, source, arguments)
    assert first.get_status() == "Completed", log_of(first)
    job = seen(first)
    assert (
        job["argv"][3]
        == job["outputs"]["prepared"]
        == str(first.run_dir / "data_outputs" / "prepared")
    )
    keys = {o["Key"] for o in s3.client().list_objects_v2(Bucket=s3_store.bucket_name)["Contents"]}
    prefix = f"out/{first.id}/prepared"
    assert keys == {f"{prefix}/made-by.txt", f"{prefix}/sub/n.txt"}
    v1 = Dataset.get_by_name(workspace, "prepared")
    assert v1.version == 1 and v1.to_path() == ["/made-by.txt", "/sub/n.txt"]
    details = first.get_details()
    assert [d["dataset"].id for d in details["outputDatasets"]] == [v1.id]
    assert details["inputDatasets"][0]["consumptionDetails"]["inputName"] == "mnist"
    assert details["inputDatasets"][0]["dataset"].id == registered.id

    second = _submit(workspace, source, arguments)
    assert second.get_status() == "Completed", log_of(second)
    assert Dataset.get_by_name(workspace, "prepared").version == 2


def test_a_failed_run_saves_no_output_dataset(workspace: Any, awkward_dir: Path) -> None:
    out = OutputFileDatasetConfig("result").register_on_complete("never")
    run = _submit(workspace, write_job(awkward_dir / "src"), [out], FAIL="1")
    assert run.get_status() == "Failed"
    assert "output datasets are not saved" in log_of(run)
    assert "never" not in workspace.datasets
    assert run.get_details()["outputDatasets"] == []


def test_an_unnamed_output_goes_to_the_default_datastore_as_a_saved_version(
    workspace: Any, awkward_dir: Path
) -> None:
    run = _submit(workspace, write_job(awkward_dir / "src"), [OutputFileDatasetConfig("o")])
    assert run.get_status() == "Completed", log_of(run)
    written = Path(workspace.get_default_datastore().path_on_disk) / "dataset" / run.id / "o"
    assert (written / "made-by.txt").read_text() == run.id
    (output,) = run.get_details()["outputDatasets"]
    assert output["dataset"].name is None and output["dataset"].to_path() == [
        "/made-by.txt",
        "/sub/n.txt",
    ]


def test_a_datastore_path_in_the_arguments_works_as_in_the_2019_notebooks(
    workspace: Any, sample: Path, awkward_dir: Path
) -> None:
    ds = workspace.get_default_datastore()
    ds.upload(str(sample), "legacy", show_progress=False)
    reference = ds.path("legacy", data_reference_name="legacy").as_download()
    run = _submit(workspace, write_job(awkward_dir / "src"), ["--data-folder", reference])
    assert run.get_status() == "Completed", log_of(run)
    job = seen(run)
    assert Path(job["argv"][1], "a.csv").read_text() == "x,y\n1,2\n3,4\n"
    assert job["variables"]["AZUREML_DATAREFERENCE_legacy"] == job["argv"][1]


def test_runs_show_lists_the_runs_datasets_and_models(
    workspace: Any, registered: Any, awkward_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = OutputFileDatasetConfig("made").register_on_complete("made")
    run = _submit(
        workspace, write_job(awkward_dir / "src"), [registered.as_named_input("mnist"), out],
        REGISTER="1",
    )  # fmt: skip
    assert run.get_status() == "Completed", log_of(run)
    with pytest.raises(SystemExit) as ended:
        cli_main(["-w", str(workspace.path), "runs", "show", run.id, "--json"])
    assert ended.value.code == 0
    shown = json.loads(capsys.readouterr().out)["datasets"]
    assert [(d["name"], d["dataset"], d["version"]) for d in shown["inputs"]] == [
        ("mnist", "mnist", 1)
    ]
    assert [(d["name"], d["dataset"]) for d in shown["outputs"]] == [("made", "made")]
    assert shown["models"] == [{"model": "job-model:1", "root": "model"}]
    with pytest.raises(SystemExit):
        cli_main(["-w", str(workspace.path), "runs", "show", run.id])
    text = capsys.readouterr().out
    assert "input dataset" in text and "mnist ← mnist:1" in text and "job-model:1" in text
