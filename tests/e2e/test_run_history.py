"""A submitted script's whole history: children, tables, images, uploads, many metrics."""

from __future__ import annotations

import base64
import textwrap
import time
from pathlib import Path

import pytest

from ferry import Experiment, Run, ScriptRunConfig, Workspace
from ferry.errors import ConfigError

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _submit(ws: Workspace, folder: Path, body: str, **kwargs) -> Run:  # type: ignore[no-untyped-def]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(textwrap.dedent(body), encoding="utf-8")
    return Experiment(ws, "e2e").submit(
        ScriptRunConfig(str(folder), "train.py", **kwargs), tags={"suite": "e2e"}
    )


def test_children_tables_images_and_uploads(workspace: Workspace, awkward_dir: Path) -> None:
    src = awkward_dir / "src"
    src.mkdir()
    (src / "plot.png").write_bytes(PNG)
    (src / "notes dir").mkdir()
    (src / "notes dir" / "a.txt").write_text("A")
    run = _submit(
        workspace,
        src,
        """
        from azureml.core.run import Run
        run = Run.get_context()
        run.log_list("lrs", [0.1, 0.01])
        run.log_table("tbl", {"x": [1, 2], "y": [3, 4]})
        run.log_row("rows", epoch=1, acc=0.5)
        run.log_row("rows", epoch=2, acc=0.7)
        run.log_image("roc", path="plot.png")
        run.upload_file("extra/plot copy.png", "plot.png")
        run.upload_folder("notes", "notes dir")
        run.add_properties({"stage": "train"})
        with run.child_run("fold-1") as child:
            child.log("acc", 0.91)
        kids = run.create_children(count=3)
        for i, kid in enumerate(kids):
            kid.log("i", i)
            kid.complete()
        """,
    )
    assert run.wait_for_completion()["status"] == "Completed"
    metrics = run.get_metrics()
    assert metrics["lrs"] == [0.1, 0.01]
    assert metrics["tbl"] == {"x": [1, 2], "y": [3, 4]}
    assert metrics["rows"] == {"epoch": [1, 2], "acc": [0.5, 0.7]}
    files = run.get_file_names()
    assert "extra/plot copy.png" in files and "notes/a.txt" in files
    assert any(name.startswith("roc") for name in files) or metrics["roc"] in files
    assert run.get_properties()["stage"] == "train"
    children = list(run.get_children())
    assert len(children) == 4
    assert {c.get_status() for c in children} == {"Completed"}
    numbered = sorted(
        c.get_tags().get("azureml.batch_child_number") for c in children if c.get_tags()
    )
    assert numbered == ["0", "1", "2"]
    recursive = run.get_metrics(recursive=True)
    assert recursive[run.id]["lrs"] == [0.1, 0.01]
    assert sorted(v["i"] for k, v in recursive.items() if "i" in v) == [0, 1, 2]
    fold = next(c for c in children if c.display_name == "fold-1")
    assert fold.parent is not None and fold.parent.id == run.id
    assert fold.get_metrics() == {"acc": 0.91}
    dest = awkward_dir / "dl"
    run.download_file("extra/plot copy.png", dest / "p.png")
    assert (dest / "p.png").read_bytes() == PNG
    with pytest.raises(ConfigError, match="has no file"):
        run.download_file("nope.txt")
    with pytest.raises(ConfigError, match="immutable"):
        run.add_properties({"stage": "other"})
    run.tag("reviewed", "yes")
    run.remove_tags(["suite"])
    assert run.get_tags() == {"reviewed": "yes"}


def test_many_metrics_are_all_kept(workspace: Workspace, awkward_dir: Path) -> None:
    run = _submit(
        workspace,
        awkward_dir / "many",
        """
        from ferry import Run
        run = Run.get_context()
        for i in range(50_000):
            run.log("loss", i * 0.5, step=i)
        run.log("done", True)
        """,
    )
    assert run.wait_for_completion()["status"] == "Completed"
    metrics = run.get_metrics()
    assert len(metrics["loss"]) == 50_000 and metrics["loss"][-1] == 49_999 * 0.5
    assert metrics["done"] is True
    records = workspace.store.get_metrics([run.id])
    assert [r.step for r in records[:3]] == [0, 1, 2]


def test_get_runs_and_run_list_filters(workspace: Workspace, awkward_dir: Path) -> None:
    ok = _submit(workspace, awkward_dir / "ok", "print('ok')\n")
    bad = _submit(workspace, awkward_dir / "bad", "raise SystemExit(3)\n")
    ok.wait_for_completion()
    bad.wait_for_completion(raise_on_error=False)
    exp = Experiment(workspace, "e2e")
    assert [r.id for r in exp.get_runs()] == [bad.id, ok.id]
    assert [r.id for r in exp.get_runs(status="Failed")] == [bad.id]
    assert [r.id for r in Run.list(exp, tags={"suite": "e2e"}, status="Completed")] == [ok.id]
    assert [r.id for r in exp.get_runs(properties="ContentSnapshotId")] == [bad.id, ok.id]
    assert Run.get(workspace, ok.id).get_status() == "Completed"
    assert bad.get_details()["error"]["exitCode"] == 3


def test_interactive_run_logs_in_process(
    workspace: Workspace, awkward_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(awkward_dir)
    (awkward_dir / "outputs").mkdir()
    (awkward_dir / "outputs" / "model.txt").write_text("m")
    exp = Experiment(workspace, "notebook")
    with exp.start_logging(snapshot_directory=None) as run:
        run.log("accuracy", 0.93)
        run.log("accuracy", 0.95)
        assert run.get_status() == "Running"
        assert run.get_metrics() == {"accuracy": [0.93, 0.95]}
    assert run.get_status() == "Completed"
    assert "outputs/model.txt" in run.get_file_names()
    with pytest.raises(ZeroDivisionError), exp.start_logging(snapshot_directory=None) as failing:
        failing.log("x", 1)
        _ = 1 / 0
    assert failing.get_status() == "Failed"
    assert "ZeroDivisionError" in failing.get_details()["error"]["error"]["message"]


def test_run_get_context_outside_a_run_is_offline(capsys: pytest.CaptureFixture[str]) -> None:
    run = Run.get_context()
    run.log("loss", 0.5)
    assert "Attempted to log scalar metric loss:\n0.5" in capsys.readouterr().out


def test_a_failed_environment_build_fails_the_run_with_the_resolver_message(
    workspace: Workspace, awkward_dir: Path
) -> None:
    from ferry import Environment

    env = Environment("impossible")
    env.python.conda_dependencies.add_pip_package("six==0.0.1")
    run = _submit(workspace, awkward_dir / "envfail", "print('never')\n", environment=env)
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Failed"
    assert details["error"]["error"]["code"] == "EnvironmentBuildError"
    assert "six" in details["error"]["error"]["message"]
    log = Path(details["logFiles"]["user_logs/std_log.txt"]).read_text()
    assert "never" not in log


def test_a_built_environment_runs_the_job_and_its_lock_is_kept(
    workspace: Workspace, awkward_dir: Path
) -> None:
    from ferry import Environment

    env = Environment("with-six")
    env.python.conda_dependencies.add_pip_package("six==1.16.0")
    body = "import six, sys\nprint('six', six.__version__, sys.prefix)\n"
    run = _submit(workspace, awkward_dir / "envok", body, environment=env)
    details = run.wait_for_completion()
    log = Path(details["logFiles"]["user_logs/std_log.txt"]).read_text()
    assert "six 1.16.0" in log and str(workspace.envs_dir) in log
    assert run.get_properties()["ferry.environment.hash"] == env.spec_hash()
    assert "environment/lock.txt" in run.get_file_names()
    again = _submit(workspace, awkward_dir / "envok", body, environment=env)
    assert again.wait_for_completion()["status"] == "Completed"
    assert again.get_details()["timings"]["prepare"] < 1.0  # reused, not rebuilt


def _waiting_run(ws: Workspace, folder: Path, marker: Path) -> Run:
    """A run whose script logs, then waits for ``marker`` before it goes on and exits 0."""
    run = _submit(
        ws,
        folder,
        f"""
        import os, time
        from ferry import Run
        run = Run.get_context()
        run.log("before", 1)
        deadline = time.monotonic() + 60
        while not os.path.exists({str(marker)!r}) and time.monotonic() < deadline:
            time.sleep(0.05)
        run.log("after", 2)
        os.makedirs("outputs", exist_ok=True)
        open("outputs/late.txt", "w").write("written after fail()")
        """,
    )
    deadline = time.monotonic() + 30
    while run.get_status() != "Running":
        assert time.monotonic() < deadline, f"run still {run.get_status()}"
        time.sleep(0.05)
    return run


def _wait_until_supervisor_done(run: Run) -> None:
    from ferry.supervisor import DONE_MARKER

    deadline = time.monotonic() + 60
    while not (run.run_dir / DONE_MARKER).exists():
        assert time.monotonic() < deadline, "the supervisor never finished"
        time.sleep(0.05)


def test_fail_from_the_driver_ends_the_run_failed_whatever_the_job_does(
    workspace: Workspace, awkward_dir: Path
) -> None:
    marker = awkward_dir / "go on"
    run = _waiting_run(workspace, awkward_dir / "failme", marker)
    run.fail("the data looked wrong", error_code="DataCheck")
    assert run.get_status() == "Failed"
    error = {"error": {"code": "DataCheck", "message": "the data looked wrong"}}
    assert Run.get(workspace, run.id).get_details()["error"] == error
    marker.touch()  # the job now goes on and exits 0
    _wait_until_supervisor_done(run)
    again = Run.get(workspace, run.id)
    assert again.get_status() == "Failed"
    assert again.get_details()["error"] == error
    with pytest.raises(ConfigError, match=r"already ended \(Failed\); cannot fail it"):
        again.fail()
    with pytest.raises(ConfigError, match=r"already ended \(Failed\); cannot complete it"):
        again.complete()


def test_complete_and_fail_defaults_from_the_driver(
    workspace: Workspace, awkward_dir: Path
) -> None:
    marker = awkward_dir / "go on"
    done = _waiting_run(workspace, awkward_dir / "completeme", marker)
    done.complete()
    assert done.get_status() == "Completed"
    failed = _waiting_run(workspace, awkward_dir / "failme", marker)
    failed.fail(ValueError("bad value"))
    assert failed.get_details()["error"] == {"error": {"code": "UserError", "message": "bad value"}}
    marker.touch()
    for run in (done, failed):
        _wait_until_supervisor_done(run)
    assert (done.get_status(), failed.get_status()) == ("Completed", "Failed")
    with pytest.raises(ConfigError, match=r"already ended \(Completed\); cannot fail it"):
        done.fail("too late")


def test_submitted_by_is_the_submitter(workspace: Workspace, awkward_dir: Path) -> None:
    import getpass

    run = _submit(workspace, awkward_dir / "who", "print('me')\n")
    run.wait_for_completion()
    recorded = run.get_details()["runDefinition"].get("submittedBy")
    assert run.get_details()["submittedBy"] == (recorded or getpass.getuser())
    workspace.store.update_run(run.id, definition={**run.record.definition, "submittedBy": "ada"})
    assert Run.get(workspace, run.id).get_details()["submittedBy"] == "ada"


def test_complete_before_the_run_started_is_refused_and_fail_is_not(workspace: Workspace) -> None:
    from ferry.status import RunStatus
    from ferry.tracking import RunRecord

    workspace.store.create_run(
        RunRecord(id="early_1700000000_00000001", experiment="early", status=RunStatus.QUEUED)
    )
    run = Run.get(workspace, "early_1700000000_00000001")
    with pytest.raises(ConfigError, match="is Queued: it cannot be marked Completed"):
        run.complete()
    assert run.get_status() == "Queued"
    run.fail()
    assert run.get_details()["error"]["error"]["code"] == "UserError"
    assert run.get_status() == "Failed"
