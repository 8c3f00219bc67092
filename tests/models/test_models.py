"""Models: registered from a run's outputs (no copy) or from local files, versions, lineage,
download, Model.get_model_path, and what is refused."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from helpers import write_files
from jobs import log_of

from ferry.cli.main import main as cli_main
from ferry.data import Dataset
from ferry.errors import ConfigError
from ferry.experiment import Experiment
from ferry.ingest import SpoolIngestor
from ferry.model import Model, ModelNotFoundException, ModelPathNotFoundException
from ferry.script_run_config import ScriptRunConfig

MODEL_JOB = """
import os, sys
from azureml.core import Run
from azureml.core.model import Model
run = Run.get_context()
os.makedirs("outputs", exist_ok=True)
if sys.argv[1:2] == ["--model"]:
    path = Model.get_model_path(sys.argv[2])
    with open("outputs/found.txt", "w") as fh:
        fh.write(path + "\\n" + open(path).read())
with open("outputs/model.pkl", "wb") as fh:
    fh.write(b"pickled" * 1000)
os.makedirs("outputs/tf", exist_ok=True)
with open("outputs/tf/saved.pb", "w") as fh:
    fh.write("graph")
try:
    run.register_model("never", "outputs/absent.pkl")
except Exception as exc:
    print("REFUSED", type(exc).__name__, exc)
"""


def _run(ws: Any, folder: Path, *arguments: Any) -> Any:
    write_files(folder, {"train.py": MODEL_JOB})
    run = Experiment(ws, "models").submit(
        ScriptRunConfig(str(folder), "train.py", arguments=list(arguments))
    )
    run.wait_for_completion(raise_on_error=False)
    assert run.get_status() == "Completed", log_of(run)
    return run


def _artifact(run: Any, name: str) -> Path:
    record = {a.name: a for a in run.workspace.store.list_artifacts(run.id)}[name]
    return Path(run.workspace.path / record.path)


def test_registering_a_runs_output_costs_no_copy_and_versions_count_up(
    workspace: Any, awkward_dir: Path
) -> None:
    run = _run(workspace, awkward_dir / "src")
    model = run.register_model("sk-ridge", "outputs/model.pkl", tags={"alpha": 0.5})
    assert (model.name, model.version, model.id) == ("sk-ridge", 1, "sk-ridge:1")
    assert model.run_id == run.id and model.experiment_name == "models"
    (digest,) = {e.digest for _, e in _manifest(workspace, model).files()}
    kept, blob = _artifact(run, "outputs/model.pkl"), workspace.blobs.path(digest)
    assert os.stat(kept).st_ino == os.stat(blob).st_ino  # the same file: nothing copied
    again = run.register_model("sk-ridge", "outputs/model.pkl")
    assert again.version == 2 and Model(workspace, "sk-ridge").version == 2
    assert Model(workspace, "sk-ridge", version=1).tags == {"alpha": "0.5"}
    assert Model(workspace, id="sk-ridge:1").version == 1
    folder = run.register_model("tf", "outputs/tf")
    assert (folder.record.root, folder.record.is_file, folder.record.files) == ("tf", False, 1)


def _manifest(ws: Any, model: Any) -> Any:
    from ferry.snapshot import load_manifest

    return load_manifest(ws.blobs, model.record.manifest_id)


def test_a_model_walks_back_to_its_code_environment_and_data(
    workspace: Any, awkward_dir: Path, sample: Path
) -> None:
    ds = workspace.get_default_datastore()
    ds.upload(str(sample), "s", show_progress=False)
    data = Dataset.File.from_files((ds, "s/")).register(workspace, "training-data")
    write_files(awkward_dir / "src", {"train.py": MODEL_JOB})
    config = ScriptRunConfig(
        str(awkward_dir / "src"), "train.py", arguments=[data.as_named_input("train")]
    )
    run = Experiment(workspace, "models").submit(config)
    run.wait_for_completion()
    extra = Dataset.File.from_files((ds, "s/a.csv"))
    model = run.register_model("lineage", "outputs/model.pkl", datasets=[("validation", extra)])
    lineage = model.lineage()
    assert lineage["run"] == run.id and lineage["snapshot"] == run.get_snapshot_id()
    scenarios = {(d["scenario"], d["name"], d["version"]) for d in lineage["datasets"]}
    assert ("training", "training-data", 1) in scenarios and ("validation", None, None) in scenarios
    assert [d.name for d in model.datasets["training"]] == ["training-data"]
    assert Model.list(workspace, dataset_id=data.id)[0].id == "lineage:1"


def test_models_registered_from_local_files_download_as_the_reference(
    workspace: Any, tmp_path: Path
) -> None:
    write_files(
        tmp_path / "m", {"model.onnx": b"onnx", "folder/a.bin": b"a", "folder/b/c.bin": b"c"}
    )
    one = Model.register(workspace, str(tmp_path / "m" / "model.onnx"), "onnx-model",
                         properties={"acc": 0.9}, description="tiny", model_framework=Model.Framework.ONNX)  # fmt: skip
    assert one.download(tmp_path / "out") == str(tmp_path / "out" / "model.onnx")
    assert (tmp_path / "out" / "model.onnx").read_bytes() == b"onnx"
    with pytest.raises(ConfigError, match="exist_ok=True"):
        one.download(tmp_path / "out")
    assert one.download(tmp_path / "out", exist_ok=True)
    many = Model.register(workspace, str(tmp_path / "m" / "folder"), "folder-model")
    where = Path(many.download(tmp_path / "out2"))
    assert where == tmp_path / "out2" / "folder" and (where / "b" / "c.bin").read_bytes() == b"c"
    assert Model(workspace, "onnx-model").properties == {"acc": "0.9"}
    assert Model(workspace, "onnx-model").model_framework == "Onnx"


def test_list_filters_as_the_reference(workspace: Any, tmp_path: Path) -> None:
    write_files(tmp_path, {"a.bin": b"a"})
    for name, tags in (("a", {"team": "x"}), ("a", {"team": "y"}), ("b", {"team": "x", "gpu": ""})):
        Model.register(workspace, str(tmp_path / "a.bin"), name, tags=tags)
    assert [m.id for m in Model.list(workspace)] == ["a:2", "a:1", "b:1"]
    assert [m.id for m in Model.list(workspace, latest=True)] == ["a:2", "b:1"]
    assert [m.id for m in Model.list(workspace, tags=[["team", "x"]])] == ["a:1", "b:1"]
    assert [m.id for m in Model.list(workspace, tags=["gpu"])] == ["b:1"]
    assert [m.id for m in Model.list(workspace, name="a", tags={"team": "y"})] == ["a:2"]
    assert Model(workspace, "a", tags=[["team", "x"]]).version == 1
    assert set(workspace.models) == {"a", "b"}
    model = Model(workspace, "b")
    model.add_tags({"new": 1})
    model.remove_tags("gpu")
    model.add_properties({"k": "v"})
    assert Model(workspace, "b").tags == {"team": "x", "new": "1"}
    with pytest.raises(ConfigError, match="cannot change"):
        model.add_properties({"k": "other"})


def test_get_model_path_with_a_workspace_offline_and_inside_a_job(
    workspace: Any, tmp_path: Path, awkward_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_files(tmp_path / "src", {"w.txt": "weights v1"})
    Model.register(workspace, str(tmp_path / "src" / "w.txt"), "w")
    write_files(tmp_path / "src", {"w.txt": "weights v2"})
    Model.register(workspace, str(tmp_path / "src" / "w.txt"), "w")
    monkeypatch.chdir(tmp_path)
    path = Model.get_model_path("w", version=1, _workspace=workspace)
    assert Path(path).resolve() == tmp_path / "azureml-models" / "w" / "1" / "w.txt"
    assert Path(path).read_text() == "weights v1"
    assert Model.get_model_path("w") == str(Path("azureml-models", "w", "1", "w.txt").absolute())
    with pytest.raises(ModelNotFoundException, match=r"not found in cache or in root at \./absent"):
        Model.get_model_path("absent")
    with pytest.raises(ConfigError, match="whole number"):
        Model.get_model_path("w", version="1")  # type: ignore[arg-type]
    run = _run(
        workspace, awkward_dir / "job", "--model", "w"
    )  # inside a job on this machine: the latest
    found = _artifact(run, "outputs/found.txt").read_text().splitlines()
    assert found[0].endswith("azureml-models/w/2/w.txt") and found[1] == "weights v2"


def test_a_path_the_run_did_not_produce_is_refused_in_the_job_and_on_the_driver(
    workspace: Any, awkward_dir: Path
) -> None:
    run = _run(workspace, awkward_dir / "src")
    assert (
        "REFUSED ModelPathNotFoundException Could not locate the provided model_path outputs/absent.pkl"
        in log_of(run)
    )
    with pytest.raises(ModelPathNotFoundException) as refused:
        run.register_model("nope", "outputs/absent.pkl")
    assert "outputs/model.pkl" in str(refused.value)  # it lists what the run kept
    assert Model.list(workspace) == []
    for bad in ("", "-dash-first", "x" * 300, "a/b"):
        with pytest.raises(ConfigError, match="not valid"):
            run.register_model(bad, "outputs/model.pkl")
    with pytest.raises(ConfigError, match="needs model_framework"):
        run.register_model("ok", "outputs/model.pkl", model_framework_version="1.0")
    with pytest.raises(ModelNotFoundException, match="Model with name missing not found"):
        Model(workspace, "missing")
    run.register_model("there", "outputs/model.pkl")
    with pytest.raises(ModelNotFoundException, match=r"no version 7; its versions are \[1\]"):
        Model(workspace, "there", version=7)
    with pytest.raises(ModelPathNotFoundException, match="does not exist"):
        Model.register(workspace, str(awkward_dir / "nowhere.pkl"), "local")


def test_the_ingestor_checks_a_jobs_model_records(workspace: Any, awkward_dir: Path) -> None:
    run = _run(workspace, awkward_dir / "src")
    spool = awkward_dir / "spool"
    spool.mkdir()
    records = [
        {
            "k": "model",
            "run": run.id,
            "rid": "0" * 32,
            "name": "bad name",
            "path": "outputs/model.pkl",
        },
        {"k": "model", "run": run.id, "rid": "1" * 32, "name": "ok", "path": "../../etc/passwd"},
        {
            "k": "model",
            "run": "someone_else_1_abcdef12",
            "rid": "2" * 32,
            "name": "ok",
            "path": "x",
        },
        {"k": "model", "run": run.id, "rid": "nothex", "name": "ok", "path": "x"},
    ]
    (spool / "1-aa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    notes: list[str] = []
    ingestor = SpoolIngestor(workspace.store, run.id, spool, workspace.path, note=notes.append)
    ingestor.drain()
    assert ingestor.refused == 4 and len(notes) == 4
    assert not (awkward_dir / "models.pending.jsonl").exists()


def test_the_cli_lists_shows_and_downloads_models(
    workspace: Any, awkward_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _run(workspace, awkward_dir / "src")
    run.register_model("cli-model", "outputs/model.pkl", tags={"stage": "dev"})
    ws = ["-w", str(workspace.path)]

    def cli(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as ended:
            cli_main([*ws, *args])
        out, err = capsys.readouterr()
        return int(ended.value.code or 0), out, err

    code, out, _ = cli("models", "list", "--json")
    assert code == 0 and [m["id"] for m in json.loads(out)] == ["cli-model:1"]
    code, out, _ = cli("models", "list", "--tag", "stage=dev")
    assert code == 0 and "cli-model" in out
    code, out, _ = cli("models", "show", "cli-model:1", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["lineage"]["run"] == run.id and shown["lineage"]["snapshot"]
    code, out, _ = cli("models", "download", "cli-model", "-o", str(tmp_path / "dl"))
    assert code == 0 and Path(out.strip()) == tmp_path / "dl" / "model.pkl"
    code, _, err = cli("models", "download", "cli-model", "-o", str(tmp_path / "dl"))
    assert code == 2 and "exist_ok" in err
    code, _, err = cli("models", "show", "cli-model:9")
    assert code == 2 and "no version 9" in err
    code, _, err = cli("models", "show", "unknown")
    assert code == 2 and "unknown" in err and "Traceback" not in err
