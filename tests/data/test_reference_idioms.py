"""Idioms of the reference's tutorials that broke with ferry until fixed: which inputs a job gets
as the file itself, legacy datastore references in the arguments, and the reference's module
paths for datasets and models (in the driver and inside a job with ferry's runtime only)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import write_files
from jobs import log_of, seen, write_job

from ferry.data import Dataset
from ferry.data.definition import new_definition, single_file
from ferry.experiment import Experiment
from ferry.script_run_config import ScriptRunConfig

COMPAT = Path(__file__).resolve().parents[2] / "compat" / "azureml" / "src"


def _file(path: str, transforms: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    definition = new_definition("file", [{"datastore": "workspaceblobstore", "path": path}])
    definition["transforms"] = transforms or []
    return definition


@pytest.mark.parametrize(
    ("definition", "files", "expected"),
    [
        (_file("diabetes/part1.csv"), ["part1.csv"], "part1.csv"),  # names the file
        (_file("/diabetes/part1.csv/"), ["part1.csv"], "part1.csv"),
        (_file("diabetes"), ["part1.csv"], None),  # a folder holding one file
        (_file("diabetes/"), ["part1.csv"], None),
        (_file("mnist/**"), ["train.gz"], None),  # a pattern matching one file
        (_file("mnist/*.gz"), ["train.gz"], None),
        (_file("diabetes/part1.csv", [{"op": "take", "count": 1}]), ["part1.csv"], None),
        (_file("a.csv"), ["a.csv", "b.csv"], None),
        (new_definition("file", [{"local": "/data/x.csv"}]), ["x.csv"], "x.csv"),
        (new_definition("file", [{"local": "/data"}]), ["x.csv"], None),
        (new_definition("file", [{"url": "https://h/d/x.csv?sig=1"}]), ["x.csv"], "x.csv"),
        (
            new_definition("file", [{"local": "/d/x.csv"}, {"local": "/e/y.csv"}]),
            ["x.csv"],
            None,
        ),
    ],
)
def test_a_job_gets_the_file_itself_only_when_the_definition_names_it(
    definition: dict[str, Any], files: list[str], expected: str | None
) -> None:
    assert single_file(definition, files) == expected


def _submit(ws: Any, source: Path, arguments: list[Any]) -> Any:
    run = Experiment(ws, "idioms").submit(ScriptRunConfig(str(source), "job.py", arguments))
    run.wait_for_completion(raise_on_error=False)
    return run


def test_a_folder_or_pattern_with_one_file_comes_in_as_the_folder(
    workspace: Any, awkward_dir: Path
) -> None:
    """``os.path.join(args.data_folder, 'iris.csv')`` works when the folder holds one file."""
    ds = workspace.get_default_datastore()
    ds.upload(str(write_files(awkward_dir / "one", {"iris.csv": "a\n1\n"})), "iris", False, True)
    folder = Dataset.File.from_files((ds, "iris/"))
    pattern = Dataset.File.from_files(ds.path("iris/**"))
    named = Dataset.File.from_files((ds, "iris/iris.csv"))
    run = _submit(
        workspace, write_job(awkward_dir / "src"),
        [folder.as_named_input("mnist").as_mount(), pattern.as_named_input("extra").as_download(),
         named.as_named_input("named").as_mount()],
    )  # fmt: skip
    assert run.get_status() == "Completed", log_of(run)
    job = seen(run)
    assert job["read"]["mnist"] == job["read"]["extra"] == {"iris.csv": "a\n1\n"}  # folders
    assert job["read"]["named"] == "a\n1\n"  # the file itself
    assert Path(job["argv"][2]).name == "iris.csv" == Path(job["inputs"]["named"]).name


def test_a_datastore_path_as_mount_in_the_arguments_always_binds(
    workspace: Any, sample: Path, awkward_dir: Path
) -> None:
    """The 2019 tutorial's ``ds.path('mnist').as_mount()``: its random name is an environment
    variable's (it started with a digit 10 times in 16, refused at submit)."""
    ds = workspace.get_default_datastore()
    names = [ds.path("x").data_reference_name for _ in range(300)]
    assert all(n[0].isalpha() and len(n) == 32 and int(n, 16) >= 0 for n in names)
    ds.upload(str(sample), "legacy", show_progress=False)
    source = write_job(awkward_dir / "src")
    for _ in range(3):
        run = _submit(workspace, source, ["--data-folder", ds.path("legacy").as_mount()])
        assert run.get_status() == "Completed", log_of(run)
        assert seen(run)["argv"][1].startswith(str(run.run_dir))  # the placeholder replaced


def _python(
    code: str, cwd: Path, python: str = sys.executable, **env: str
) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join([str(COMPAT), *env.pop("PYTHONPATH", "").split(os.pathsep)])
    return subprocess.run(
        [python, "-s", "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True,
        env={**os.environ, **env, "PYTHONPATH": path.rstrip(os.pathsep)}, timeout=60,
    )  # fmt: skip


def test_azureml_core_exports_dataset_datastore_and_model(awkward_dir: Path) -> None:
    done = _python(
        """
        import ferry, ferry.model
        from azureml.core import Dataset, Datastore, Model
        from azureml.core.dataset import Dataset as D2
        from azureml.core.model import Model as M2
        from azureml.data.datapath import DataPath
        from azureml.core.resource_configuration import ResourceConfiguration
        assert ResourceConfiguration is ferry.model.ResourceConfiguration
        assert Dataset is D2 is ferry.Dataset and Model is M2 is ferry.Model
        assert Datastore is ferry.Datastore and DataPath is ferry.DataPath
        import azureml.core
        assert {"Dataset", "Datastore", "Model"} <= set(azureml.core.__all__)
        print("ok")
        """,
        awkward_dir,
    )
    assert done.stdout.strip() == "ok", done.stderr


def test_model_and_dataset_paths_work_in_a_job_with_ferrys_runtime_only(
    awkward_dir: Path,
) -> None:
    """A scoring script's ``from azureml.core.model import Model`` with the compatibility package
    on the job's path and no ferry library in its environment (only the in-job runtime)."""
    runtime = Path(sys.modules["ferry"].__file__ or "").parent / "runtime"
    code = """
        import os, sys
        from azureml.core import Run, Model as M0, Dataset as D0
        from azureml.core.model import Model, ModelNotFoundException
        from azureml.core.dataset import Dataset
        assert Model is M0 and Dataset is D0
        import ferry
        assert not hasattr(ferry, "Workspace"), ferry.__file__
        os.makedirs("azureml-models/m/2", exist_ok=True)
        open("azureml-models/m/2/m.pkl", "w").close()
        print(Model.get_model_path("m"))
        try:
            Model.get_model_path("nope")
        except ModelNotFoundException as exc:
            print("missing:", exc)
        """
    shims = runtime / "_shims"
    # the runtime's own layout in a job: ferry_runtime importable, its shims first on the path
    job_path = awkward_dir / "job path"
    job_path.mkdir()
    (job_path / "ferry_runtime").symlink_to(runtime)
    bare = sys._base_executable  # this Python without the venv: no ferry library, as a job's
    done = _python(
        code, awkward_dir, bare, PYTHONPATH=os.pathsep.join([str(shims), str(job_path)]),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert Path(lines[0]) == awkward_dir / "azureml-models" / "m" / "2" / "m.pkl", done.stdout
    assert lines[1].startswith("missing:"), done.stdout


def test_register_pandas_dataframe_writes_parquet_and_registers_a_version(
    workspace: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """``Dataset.Tabular.register_pandas_dataframe`` (the AutoML and deployment notebooks): the
    frame is written under a new folder of the target and each call makes a new version."""
    import pandas as pd

    from ferry.errors import ConfigError

    ds = workspace.get_default_datastore()
    frame = pd.DataFrame({"age": [31, 52, 47], "bmi": [21.5, 30.1, 25.0], "sex": list("fmf")})
    first = Dataset.Tabular.register_pandas_dataframe(frame, (ds, "frames"), "patients")
    second = Dataset.Tabular.register_pandas_dataframe(
        frame.head(2), target=ds, name="patients", description="two", show_progress=False
    )
    assert (first.name, first.version, second.version) == ("patients", 1, 2)
    pd.testing.assert_frame_equal(first.to_pandas_dataframe(), frame)
    assert len(Dataset.get_by_name(workspace, "patients").to_pandas_dataframe()) == 2
    assert Dataset.get_by_name(workspace, "patients", version=1).description is None
    (written,) = Dataset.File.from_files((ds, "frames/**")).to_path()
    assert len(written.split("/")[1]) == 36 and written.endswith(".parquet"), written
    for bad, match in (
        (dict(dataframe=[1, 2], target=ds, name="x"), "pandas DataFrame"),
        (dict(dataframe=frame, target="frames", name="x"), "target must be"),
        (dict(dataframe=frame, target=ds, name=" bad"), "dataset name"),
    ):
        with pytest.raises(ConfigError, match=match):
            Dataset.Tabular.register_pandas_dataframe(**bad)  # type: ignore[arg-type]


def test_run_config_data_references_bind_as_the_2019_notebooks_declare_them(
    workspace: Any, sample: Path
) -> None:
    """``rc.data_references = {ds.name: DataReferenceConfiguration(…)}`` with
    ``str(ds.as_download())`` in the arguments: the key names the reference its placeholder
    stands for. The configuration is its own JSON form, so the run's definition stores."""
    import json

    from ferry.data.bindings import bind
    from ferry.data.datastore import DataReferenceConfiguration
    from ferry.errors import ConfigError
    from ferry.runconfig import RunConfiguration

    ds = workspace.get_default_datastore()
    ds.upload(str(sample), "diabetes", show_progress=False)
    rc = RunConfiguration()
    config = DataReferenceConfiguration(
        datastore_name=ds.name, path_on_datastore="diabetes", mode="download"
    )
    rc.data_references = {ds.name: config, "noted": "$AZUREML_DATAREFERENCE_noted"}
    assert json.loads(json.dumps(rc.data_references[ds.name])) == {
        "dataStoreName": "workspaceblobstore", "mode": "download",
        "pathOnDataStore": "diabetes", "pathOnCompute": None, "overwrite": False,
    }  # fmt: skip
    inputs, outputs = bind(workspace, ["--data-folder", str(ds.as_download())], rc, "r_1")
    assert list(inputs) == ["workspaceblobstore"] and outputs == {}
    entry = inputs["workspaceblobstore"]
    assert entry["mechanism"] == "Download"
    assert entry["options"]["placeholder"] == "$AZUREML_DATAREFERENCE_workspaceblobstore"
    assert entry["options"]["files"] == 4  # the sample folder's files
    assert ds.path("x").as_download().to_config().mode == "download"
    rc.data_references = {"bad": DataReferenceConfiguration(mode="mount")}
    with pytest.raises(ConfigError, match="names no datastore"):
        bind(workspace, [], rc, "r_2")
    with pytest.raises(ConfigError, match="mode must be"):
        DataReferenceConfiguration("workspaceblobstore", mode="copy")


def test_dataset_names_may_hold_spaces_as_in_the_references_labs(
    workspace: Any, sample: Path
) -> None:
    """The labs register 'diabetes dataset' inside ``try: … except Exception as ex: print(ex)``:
    a refusal there surfaced later as ``None.as_named_input``."""
    from ferry.errors import ConfigError

    ds = workspace.get_default_datastore()
    ds.upload(str(sample), "diabetes-data", show_progress=False)
    tabular = Dataset.Tabular.from_delimited_files(path=(ds, "diabetes-data/*.csv"))
    tabular.register(workspace, "diabetes dataset", "diabetes data", {"format": "CSV"}, True)
    files = Dataset.File.from_files(path=(ds, "diabetes-data/*.csv"))
    files.register(workspace, name="Diabetes file dataset (v2)", create_new_version=True)
    assert workspace.datasets.get("diabetes dataset").version == 1
    assert Dataset.get_by_name(workspace, "Diabetes file dataset (v2)").to_path() == [
        "/a.csv", "/b.csv",
    ]  # fmt: skip
    for bad in ("", " diabetes", "diabetes ", "tab\there", "-x", "x" * 256, 7):
        with pytest.raises(ConfigError, match="dataset name"):
            files.register(workspace, bad, create_new_version=True)  # type: ignore[arg-type]


@pytest.fixture
def web(tmp_path: Path) -> Iterator[str]:
    """A static HTTP server on loopback serving ``tmp_path/www`` (stopped after the test)."""
    import socket
    import time
    import urllib.request

    root = write_files(tmp_path / "www", {"mnist/train.gz": "train", "mnist/test.gz": "test"})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            urllib.request.urlopen(base + "/mnist/train.gz", timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("the loopback HTTP server did not start")
            time.sleep(0.05)
    yield base
    server.terminate()
    server.wait(timeout=10)


def test_web_urls_as_the_keras_notebook_gives_them(
    workspace: Any, web: str, awkward_dir: Path
) -> None:
    from ferry.data import DataPathNotFound, DatastoreUnavailable

    web_paths = [f"{web}/mnist/train.gz", f"{web}/mnist/test.gz"]
    dataset = Dataset.File.from_files(path=web_paths)
    assert dataset.to_path() == ["/test.gz", "/train.gz"]
    dataset = dataset.register(workspace, "mnist-dataset", "training and test dataset", None, True)
    run = _submit(
        workspace, write_job(awkward_dir / "src"),
        ["--data-folder", dataset.as_named_input("mnist").as_mount(),
         Dataset.File.from_files(path=web_paths[0]).as_named_input("extra").as_download()],
    )  # fmt: skip
    assert run.get_status() == "Completed", log_of(run)
    assert seen(run)["read"] == {
        "mnist": {"test.gz": "test", "train.gz": "train"},
        "extra": "train",
    }
    with pytest.raises(DataPathNotFound, match="matches no file"):
        Dataset.File.from_files(path=f"{web}/mnist/absent.gz")
    with pytest.raises(DatastoreUnavailable, match=r"cannot be reached.*retry"):
        Dataset.File.from_files(path="http://127.0.0.1:1/mnist/train.gz")


@pytest.mark.parametrize(
    "method",
    [
        "register_azure_file_share", "register_azure_data_lake", "register_azure_data_lake_gen2",
        "register_azure_sql_database", "register_azure_postgre_sql", "register_azure_my_sql",
        "register_dbfs", "register_hdfs",
    ],
)  # fmt: skip
def test_the_references_other_datastore_kinds_are_refused_naming_what_to_use(
    workspace: Any, method: str
) -> None:
    from ferry.data import Datastore
    from ferry.errors import ConfigError

    with pytest.raises(ConfigError, match=f"Datastore.{method}: .*register_azure_blob_container"):
        getattr(Datastore, method)(workspace, "store", account_name="a", account_key="k")
    assert set(Datastore.list(workspace)) == {"workspaceblobstore"}  # nothing registered


def test_a_datastore_sets_itself_as_the_default(workspace: Any, awkward_dir: Path) -> None:
    from ferry.data import DataPathNotFound, Datastore

    with pytest.raises(DataPathNotFound, match=r"does not exist; .*create_if_not_exists=True"):
        Datastore.register_local_folder(workspace, "local_data", str(awkward_dir / "store"))
    other = Datastore.register_local_folder(
        workspace, "local_data", str(awkward_dir / "store"), create_if_not_exists=True
    )
    other.set_as_default()
    assert workspace.get_default_datastore().name == "local_data"
    Datastore.get(workspace, "workspaceblobstore").set_as_default()
    assert workspace.get_default_datastore().name == "workspaceblobstore"


def test_tabular_sources_ferry_does_not_read_are_refused_naming_what_to_use() -> None:
    from ferry.errors import ConfigError

    with pytest.raises(ConfigError, match=r"from_json_lines_files: .*from_parquet_files"):
        Dataset.Tabular.from_json_lines_files(path="events.jsonl")
    with pytest.raises(ConfigError, match=r"from_sql_query: .*register_pandas_dataframe"):
        Dataset.Tabular.from_sql_query(("sqlstore", "SELECT * FROM t"))


def _reader(folder: Path) -> Path:
    """A job that prints the files under the folder its first argument names."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.py").write_text(
        "import os, sys\n"
        "root = sys.argv[sys.argv.index('--data') + 1]\n"
        "print('files:', sorted(n for _, _, ns in os.walk(root) for n in ns))\n",
        encoding="utf-8",
    )
    return folder


def test_run_config_data_references_alone_are_mounted_in_a_run_without_a_note(
    workspace: Any, sample: Path, awkward_dir: Path
) -> None:
    from ferry.data import DataReferenceConfiguration
    from ferry.runconfig import RunConfiguration

    ds = workspace.get_default_datastore()
    ds.upload(str(sample), "diabetes", show_progress=False)
    rc = RunConfiguration()
    rc.data_references = {
        "diabetes": DataReferenceConfiguration(ds.name, path_on_datastore="diabetes")
    }
    src = ScriptRunConfig(
        str(_reader(awkward_dir / "refs")), "job.py",
        ["--data", "$AZUREML_DATAREFERENCE_diabetes"], run_config=rc,
    )  # fmt: skip
    run = Experiment(workspace, "idioms").submit(src)
    assert run.wait_for_completion(raise_on_error=False)["status"] == "Completed"
    log = run.get_details_with_logs()["logFiles"]["user_logs/std_log.txt"]
    assert "files: [" in log and "[]" not in log.split("files:")[1].splitlines()[0], log
    assert "dataReferences" not in log  # acted on: no "is not used" note


def test_an_estimators_script_params_take_a_dataset_as_the_2019_tutorials_pass_it(
    workspace: Any, sample: Path, awkward_dir: Path
) -> None:
    from ferry.estimator import Estimator

    ds = workspace.get_default_datastore()
    ds.upload(str(sample), "diabetes", show_progress=False)
    dataset = Dataset.File.from_files(path=[(ds, "diabetes/**")])
    est = Estimator(
        source_directory=str(_reader(awkward_dir / "est")),
        entry_script="job.py",
        script_params={"--data": dataset.as_named_input("diabetes").as_mount()},
        compute_target="local",
        use_docker=False,
        user_managed=True,
    )
    run = Experiment(workspace, "idioms").submit(est)
    assert run.wait_for_completion(raise_on_error=False)["status"] == "Completed"
    log = run.get_details_with_logs()["logFiles"]["user_logs/std_log.txt"]
    assert "files: [" in log and "DatasetConsumptionConfig" not in log, log


def test_an_estimators_inputs_and_script_params_take_a_datastore_path(
    workspace: Any, sample: Path, awkward_dir: Path
) -> None:
    """2019's ``script_params={'--data': ds.path('diabetes').as_mount()}`` with the same
    reference also in ``inputs=[…]``: mounted once, its files in the job."""
    from ferry.estimator import Estimator

    ds = workspace.get_default_datastore()
    ds.upload(str(sample), "diabetes", show_progress=False)
    reference = ds.path("diabetes").as_mount()
    est = Estimator(
        source_directory=str(_reader(awkward_dir / "est-refs")),
        entry_script="job.py",
        script_params={"--data": reference},
        inputs=[reference],
        compute_target="local",
        use_docker=False,
        user_managed=True,
    )
    run = Experiment(workspace, "idioms").submit(est)
    assert run.wait_for_completion(raise_on_error=False)["status"] == "Completed"
    log = run.get_details_with_logs()["logFiles"]["user_logs/std_log.txt"]
    assert "files: [" in log and "AZUREML_DATAREFERENCE" not in log, log
    assert "dataReferences" not in log  # mounted: no "is not used" note


TRAIN_WITH_DATASETS = """\
import argparse
from ferry import Run
from {module} import Dataset

parser = argparse.ArgumentParser()
parser.add_argument("--input-data", type=str)
parser.add_argument("--files", type=str)
args = parser.parse_args()
run = Run.get_context()
ws = run.experiment.workspace
table = Dataset.get_by_id(ws, id=args.input_data)
print("rows:", len(table.to_pandas_dataframe()))
files = Dataset.get_by_name(ws, name="diabetes files")
print("files:", len(files.to_path()), len(files.download()))
try:
    Dataset.get_by_name(ws, name="nope")
except Exception as exc:
    print("refused:", exc)
"""


@pytest.mark.parametrize("module", ["ferry", "ferry.runtime.datasets"])
def test_the_train_with_datasets_idiom_finds_the_runs_inputs_through_its_workspace(
    module: str, workspace: Any, sample: Path, awkward_dir: Path
) -> None:
    """``ws = run.experiment.workspace; Dataset.get_by_id(ws, id=args.input_data)``, as the
    reference's "train with datasets" article writes it, with ferry or with its runtime only."""
    ds = workspace.get_default_datastore()
    ds.upload(str(sample), "diabetes", show_progress=False)
    table = Dataset.Tabular.from_delimited_files(path=[(ds, "diabetes/*.csv")])
    files = Dataset.File.from_files(path=[(ds, "diabetes/**")]).register(
        workspace, "diabetes files"
    )
    source = awkward_dir / f"twd-{module}"
    source.mkdir()
    (source / "job.py").write_text(TRAIN_WITH_DATASETS.format(module=module), encoding="utf-8")
    arguments = [
        "--input-data", table.as_named_input("diabetes"),
        "--files", files.as_named_input("files").as_download(),
    ]  # fmt: skip
    run = Experiment(workspace, "idioms").submit(ScriptRunConfig(str(source), "job.py", arguments))
    details = run.wait_for_completion(raise_on_error=False)
    log = log_of(run)
    assert details["status"] == "Completed", log
    rows = len(table.to_pandas_dataframe())
    assert f"rows: {rows}" in log and "files: 4 4" in log, log
    assert "refused: this run has no input dataset with name 'nope'" in log, log


def test_a_datastore_whose_name_holds_a_dash_mounts_as_a_reference(
    workspace: Any, sample: Path, awkward_dir: Path
) -> None:
    """``ds.as_mount()`` is named after its datastore; '-' is allowed in a datastore's name,
    so the job gets it (its variable is set as it is)."""
    from ferry.data import Datastore

    ds = Datastore.register_local_folder(workspace, "team-data", str(sample))
    run = _submit_reader(workspace, _reader(awkward_dir / "dash"), ["--data", ds.as_mount()])
    assert run.get_status() == "Completed", log_of(run)
    assert "files: [" in log_of(run) and "AZUREML_DATAREFERENCE" not in log_of(run)


def _submit_reader(ws: Any, source: Path, arguments: list[Any]) -> Any:
    run = Experiment(ws, "idioms").submit(ScriptRunConfig(str(source), "job.py", arguments))
    run.wait_for_completion(raise_on_error=False)
    return run
