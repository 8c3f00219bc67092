"""The run handle in the driver, on real submitted runs (local target), as the reference's:
metrics and files logged from the driver after the job and while it runs, logs, environment,
snapshots, names, numbers, types, listing and the Jupyter view."""

from __future__ import annotations

import base64
import io
import json
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ferry import Environment, Experiment, Run, ScriptRunConfig, Workspace
from ferry.errors import ConfigError
from ferry.interactive import InteractiveRun

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
CONFUSION = {"schema_type": "confusion_matrix", "schema_version": "1.0.0", "data": {"m": [[1]]}}


def _submit(ws: Workspace, folder: Path, body: str, *args: str, **kwargs: Any) -> Run:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(textwrap.dedent(body), encoding="utf-8")
    config = ScriptRunConfig(str(folder), "train.py", arguments=list(args), **kwargs)
    return Experiment(ws, "driver").submit(config, tags={"suite": "driver"})


def _poll(condition: Callable[[], object], what: str, seconds: float = 60.0) -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def test_after_the_job_the_driver_logs_and_uploads_and_reads_back_like_the_job(
    workspace: Workspace, awkward_dir: Path
) -> None:
    run = _submit(
        workspace,
        awkward_dir / "src",
        """
        from azureml.core import Run
        run = Run.get_context()
        run.log("loss", 0.5)
        run.log("loss", 0.25)
        open("outputs/model.txt", "w").write("weights")
        """,
    )
    run.wait_for_completion()
    fetched = Run.get(workspace, run.id)  # a fetched handle writes as well as the submitted one
    image = awkward_dir / "roc curve.png"
    image.write_bytes(PNG)
    reports = awkward_dir / "reports 'q'"
    (reports / "sub dir").mkdir(parents=True)
    (reports / "a.html").write_text("<p>a</p>")
    (reports / "sub dir" / "ü.txt").write_text("u")

    fetched.log("test_acc", 0.93, description="held-out accuracy")
    fetched.log("loss", 0.125, step=3)
    fetched.log_list("lrs", [0.1, 0.01])
    fetched.log_row("per_class", cls="a", f1=0.8)
    fetched.log_row("per_class", cls="b", f1=0.6)
    fetched.log_table("roc", {"fpr": [0.0, 0.5], "tpr": [0.0, 0.9]})
    fetched.log_confusion_matrix("cm", json.dumps(CONFUSION))
    fetched.log_accuracy_table("acc_table", {**CONFUSION, "schema_type": "accuracy_table"})
    fetched.log_residuals("res", {**CONFUSION, "schema_type": "residuals"})
    fetched.log_predictions("pred", {**CONFUSION, "schema_type": "predictions"})
    fetched.log_image("roc_plot", path=image)
    kept = fetched.upload_file("extra/model copy.txt", io.BytesIO(b"bytes"))
    fetched.upload_file("notes.txt", io.StringIO("text ü"))
    assert fetched.upload_files(["one.txt", "two.txt"], [image, image], return_artifacts=True)
    folder = fetched.upload_folder("reports", reports)

    metrics = run.get_metrics()  # the submitted handle sees it all at once
    assert metrics["loss"] == [0.5, 0.25, 0.125]
    assert metrics["test_acc"] == 0.93
    assert metrics["lrs"] == [0.1, 0.01]
    assert metrics["per_class"] == {"cls": ["a", "b"], "f1": [0.8, 0.6]}
    assert metrics["roc"] == {"fpr": [0.0, 0.5], "tpr": [0.0, 0.9]}
    assert metrics["cm"] == CONFUSION
    assert metrics["roc_plot"] == "roc curve.png"
    names = run.get_file_names()
    for name in ("outputs/model.txt", "roc curve.png", "extra/model copy.txt", "notes.txt"):
        assert name in names
    assert [f["name"] for f in folder] == ["reports/a.html", "reports/sub dir/ü.txt"]
    artifacts = workspace.runs_dir / run.id / "artifacts"
    assert (artifacts / "extra" / "model copy.txt").read_bytes() == b"bytes"
    assert kept["path"] == str((artifacts / "extra" / "model copy.txt").relative_to(workspace.path))
    assert (artifacts / "notes.txt").read_text(encoding="utf-8") == "text ü"
    out = run.download_file("reports/sub dir/ü.txt", awkward_dir / "dl.txt")
    assert Path(out).read_text() == "u"
    assert not list(artifacts.rglob("*.part"))  # every copy was renamed into place
    assert run.get_status() == "Completed"  # logging after the end does not reopen the run


def test_the_driver_logs_while_the_job_logs_and_both_series_are_whole(
    workspace: Workspace, awkward_dir: Path
) -> None:
    flag = awkward_dir / "stop flag"
    run = _submit(
        workspace,
        awkward_dir / "concurrent",
        """
        import os, sys, time
        from azureml.core import Run
        run = Run.get_context()
        i = 0
        while not os.path.exists(sys.argv[1]):
            run.log("job", i)
            i += 1
            if i % 50 == 0:
                run.flush()
            time.sleep(0.001)
        run.upload_file("from_job.txt", __file__)
        run.log("job_count", i)
        """,
        str(flag),
    )
    _poll(lambda: run.get_status() == "Running" and run.get_metrics().get("job"), "the job's log")
    for i in range(150):
        run.log("driver", i)
    run.upload_file("from_driver.txt", io.BytesIO(b"driver"))
    run.tag("checked", "yes")
    # all of it happened while the job ran (NotResponding: its supervisor's heartbeat, every
    # 0.3 s in the tests, came late on a busy machine — the job still runs and ends Completed)
    assert run.get_status() in ("Running", "NotResponding")
    flag.write_text("stop")
    run.wait_for_completion()
    assert run.get_status() == "Completed"
    metrics = run.get_metrics()
    assert metrics["driver"] == list(range(150))
    assert metrics["job_count"] > 50
    assert metrics["job"] == list(range(metrics["job_count"]))
    assert {"from_job.txt", "from_driver.txt"} <= set(run.get_file_names())
    assert run.get_tags()["checked"] == "yes"


def test_logs_environment_names_numbers_and_type(
    workspace: Workspace, awkward_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = Environment("driver-env")
    env.python.user_managed_dependencies = True
    env.environment_variables = {"GREETING": "hello there"}
    first = _submit(workspace, awkward_dir / "a", "import os; print(os.environ['GREETING'])\n")
    second = _submit(
        workspace, awkward_dir / "b", "import os; print(os.environ['GREETING'])\n", environment=env
    )
    second.wait_for_completion()
    first.wait_for_completion(raise_on_error=False)
    assert (first.number, second.number) == (1, 2)
    assert second.type == "azureml.scriptrun"

    details = second.get_details_with_logs()
    assert "hello there" in details["logFiles"]["user_logs/std_log.txt"]
    assert details["runId"] == second.id

    monkeypatch.chdir(awkward_dir)
    written = second.get_all_logs()
    assert written == [str(Path("assets") / second.id / "user_logs" / "std_log.txt")]
    assert "hello there" in Path(written[0]).read_text()
    into = second.get_all_logs(destination=awkward_dir / "logs here")
    assert Path(into[0]).read_text() == Path(written[0]).read_text()

    got = second.get_environment()
    assert isinstance(got, Environment)
    assert got.name == "driver-env" and got.environment_variables["GREETING"] == "hello there"
    assert got.python.user_managed_dependencies is True

    second.display_name = "ridge, alpha 'q' ü"
    second.description = "the second try"
    again = Run.get(workspace, second.id)
    assert again.display_name == "ridge, alpha 'q' ü"
    assert again.description == "the second try"
    assert again.number == 2 and again.type == "azureml.scriptrun"

    page = again._repr_html_()
    assert "<table" in page and "driver" in page and second.id in page
    assert "azureml.scriptrun" in page and "Completed" in page
    assert (
        f'href="{(workspace.runs_dir / second.id / "user_logs" / "std_log.txt").as_uri()}"' in page
    )


def test_take_snapshot_gives_a_run_without_one_its_source(
    workspace: Workspace, awkward_dir: Path
) -> None:
    from ferry import RunConfiguration

    rc = RunConfiguration()
    rc.history.snapshot_project = False
    run = _submit(workspace, awkward_dir / "nosnap", "print('x')\n", run_config=rc)
    run.wait_for_completion()
    assert run.get_snapshot_id() is None
    model = awkward_dir / "model card.md"
    model.write_text("# card", encoding="utf-8")
    snapshot_id = run.take_snapshot(model)
    assert Run.get(workspace, run.id).get_snapshot_id() == snapshot_id
    assert run.get_properties()["ContentSnapshotId"] == snapshot_id
    restored = Path(run.restore_snapshot(path=awkward_dir / "restored"))
    assert (restored / "model card.md").read_text(encoding="utf-8") == "# card"
    with pytest.raises(ConfigError, match="Cannot take snapshot as the run already has one"):
        run.take_snapshot(awkward_dir)

    folder_run = _submit(workspace, awkward_dir / "nosnap2", "print('y')\n", run_config=rc)
    folder_run.wait_for_completion()
    folder_id = folder_run.take_snapshot(awkward_dir / "nosnap2")
    restored = Path(folder_run.restore_snapshot(path=awkward_dir / "restored2"))
    assert (restored / "train.py").read_text() == "print('y')\n"
    assert folder_run.get_snapshot_id() == folder_id


def test_listing_by_the_reference_type_status_and_children(
    workspace: Workspace, awkward_dir: Path
) -> None:
    parent = _submit(
        workspace,
        awkward_dir / "kids",
        """
        from azureml.core import Run
        run = Run.get_context()
        for kid in run.create_children(count=2):
            kid.complete()
        """,
    )
    parent.wait_for_completion()
    experiment = Experiment(workspace, "driver")
    with experiment.start_logging(snapshot_directory=None, outputs=False) as interactive:
        assert isinstance(interactive, InteractiveRun)
        interactive.log("x", 1)
    # children are runs of the experiment too: numbered 2 and 3, before the interactive run
    assert interactive.number == 4 and interactive.type == "ferry.interactive"
    listed = [r.id for r in Run.list(experiment, type="azureml.scriptrun", status="Completed")]
    assert listed == [parent.id]
    assert [r.id for r in Run.list(experiment, type="ferry.scriptrun")] == [parent.id]
    assert {r.id for r in Run.list(experiment)} == {parent.id, interactive.id}
    kids = list(parent.get_children(type="ferry.childrun"))
    assert sorted(k.number for k in kids) == [2, 3]
    assert list(parent.get_children(type="azureml.scriptrun")) == []
    assert len(list(Run.list(experiment, include_children=True, tags={"suite": "driver"}))) == 1
    with pytest.raises(ConfigError, match="unknown run status 'Bogus'"):
        list(Run.list(experiment, status="Bogus"))
    with pytest.raises(ConfigError, match="has no environment"):
        interactive.get_environment()
