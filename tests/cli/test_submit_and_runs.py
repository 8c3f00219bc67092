"""The CLI end to end: submit, follow, summary, runs list/show/logs/metrics/download/cancel."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart" / "train.py"


def _script(folder: Path, body: str, name: str = "train.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def test_submit_quickstart_follows_log_and_prints_summary(ferry) -> None:  # type: ignore[no-untyped-def]
    res = ferry("submit", str(QUICKSTART), "-e", "quick", "--", "--alpha", "0.5", "--epochs", "5")
    assert res.code == 0, res.err + res.out
    assert "RunId: quick_" in res.out
    assert "epoch  4" in res.out
    assert "Completed" in res.out and "metric mse" in res.out and "outputs/model.json" in res.out


def test_runs_commands_show_what_was_kept(ferry, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    script = _script(
        awkward_dir / "proj",
        """
        import os
        from azureml.core import Run
        run = Run.get_context()
        run.log("trailing space ", 1.0)
        run.log("odd/name:ü", 2)
        run.log_row("table", epoch=1, acc=0.5)
        os.makedirs("outputs", exist_ok=True)
        open("outputs/result.txt", "w").write("ok")
        print("done here")
        """,
    )
    res = ferry("submit", str(script), "-e", "cli", "--tag", "team=a", "--json")
    assert res.code == 0, res.err
    details = res.json()
    run_id = details["runId"]
    assert details["metrics"] == {
        "trailing space ": 1.0,
        "odd/name:ü": 2,
        "table": {"epoch": 1, "acc": 0.5},
    }

    listed = ferry("runs", "list", "--json").json()
    assert [r["runId"] for r in listed] == [run_id]
    assert listed[0]["tags"] == {"team": "a"}

    shown = ferry("runs", "show", run_id, "--json").json()
    assert shown["status"] == "Completed"
    assert {"queue", "prepare", "run", "finalize"} <= set(shown["timings"])
    assert "outputs/result.txt" in shown["files"]
    assert "ContentSnapshotId" in shown["properties"]

    assert "done here" in ferry("runs", "logs", run_id).out
    assert ferry("runs", "metrics", run_id, "--json").json()["trailing space "] == 1.0
    dest = awkward_dir / "down load"
    res = ferry("runs", "download", run_id, "-o", str(dest), "--prefix", "outputs/")
    assert res.code == 0
    assert (dest / "outputs" / "result.txt").read_text() == "ok"
    human = ferry("runs", "show", run_id)
    assert "trailing space" in human.out and res.code == 0


def test_failed_run_exits_1_with_the_error(ferry, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    script = _script(awkward_dir / "bad", "raise RuntimeError('no data found')\n")
    res = ferry("submit", str(script), "-e", "bad")
    assert res.code == 1
    assert "RuntimeError: no data found" in res.out


def test_no_wait_returns_at_once_and_cancel_stops_the_run(ferry, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    script = _script(
        awkward_dir / "slow", "import time\nprint('go', flush=True)\ntime.sleep(120)\n"
    )
    t = time.monotonic()
    res = ferry("submit", str(script), "-e", "slow", "--no-wait")
    assert res.code == 0 and time.monotonic() - t < 10
    run_id = res.out.strip().splitlines()[-1]
    deadline = time.monotonic() + 20
    while ferry("runs", "show", run_id, "--json").json()["status"] != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert "cancel requested" in ferry("runs", "cancel", run_id).out
    follow = ferry("runs", "logs", run_id, "-f")
    assert "go" in follow.out
    assert ferry("runs", "show", run_id, "--json").json()["status"] == "Canceled"
    assert "already ended" in ferry("runs", "cancel", run_id).out


def test_init_writes_config_found_from_subfolders(ferry, awkward_dir: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    project = awkward_dir / "project"
    res = ferry("init", str(project), workspace=None)
    assert res.code == 0
    sub = project / "src" / "deep"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    from ferry.workspace import Workspace

    assert Workspace.from_config().path == (project / ".ferry").resolve()


def test_submit_with_a_requirements_file_and_logs_as_json(ferry, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    script = _script(awkward_dir / "envproj", "import six\nprint('six', six.__version__)\n")
    (script.parent / "requirements.txt").write_text("six==1.16.0\n")
    res = ferry(
        "submit",
        str(script),
        "-e",
        "envcli",
        "--env",
        str(script.parent / "requirements.txt"),
        "--json",
    )
    assert res.code == 0, res.err
    run_id = res.json()["runId"]
    logs = ferry("runs", "logs", run_id, "--json").json()
    assert "six 1.16.0" in logs["user_logs/std_log.txt"]


def test_a_relative_workspace_folder_is_found_from_here(
    ferry, awkward_dir: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """``ferry -w ws runs list`` in the folder holding ``ws`` lists its runs: a bare name is a
    folder here, not the reference's named workspace under $FERRY_HOME."""
    _script(awkward_dir, "print('hi')\n")
    monkeypatch.chdir(awkward_dir)
    assert ferry("submit", "train.py", "-e", "rel", workspace=Path("ws")).code == 0
    listed = ferry("runs", "list", "--json", workspace=Path("ws"))
    assert listed.code == 0 and '"experiment": "rel"' in listed.out
    assert (awkward_dir / "ws" / "ferry.db").exists()
