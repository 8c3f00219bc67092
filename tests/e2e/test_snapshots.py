"""Runs execute their snapshot; restore, diff and exact rerun work even after the source is gone."""

from __future__ import annotations

import shutil
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from ferry import Experiment, Run, ScriptRunConfig, Workspace
from ferry.errors import ConfigError


def _project(root: Path) -> Path:
    src = root / "src dir ü"
    (src / "pkg").mkdir(parents=True)
    (src / "train.py").write_text(
        textwrap.dedent(
            """
            import os, sys, time
            from pkg.data import VALUE
            if "--wait" in sys.argv:
                while not os.path.exists(sys.argv[-1]):
                    time.sleep(0.02)
            print("value", VALUE, open("data.txt").read().strip())
            os.makedirs("outputs", exist_ok=True)
            open("outputs/v.txt", "w").write(str(VALUE))
            """
        )
    )
    (src / "pkg" / "__init__.py").write_text("")
    (src / "pkg" / "data.py").write_text("VALUE = 1\n")
    (src / "data.txt").write_text("first\n")
    (src / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (src / "run.sh").chmod(0o755)
    return src


def _submit(ws: Workspace, src: Path, *args: str) -> Run:
    return Experiment(ws, "snap").submit(
        ScriptRunConfig(str(src), "train.py", arguments=list(args))
    )


def test_resubmit_stores_nothing_new_and_edits_during_a_run_do_not_leak(
    workspace: Workspace, awkward_dir: Path
) -> None:
    src = _project(awkward_dir)
    first = _submit(workspace, src)
    first.wait_for_completion()
    snap1 = first.get_details()["snapshot"]
    assert snap1["files"] == 5 and snap1["newFiles"] == 5
    again = _submit(workspace, src)
    again.wait_for_completion()
    snap2 = again.get_details()["snapshot"]
    assert snap2["id"] == snap1["id"] and snap2["newFiles"] == 0 and snap2["newBytes"] == 0
    assert again.get_properties()["ContentSnapshotId"] == snap1["id"]

    go = awkward_dir / "go"
    waiting = _submit(workspace, src, "--wait", str(go))
    deadline = time.monotonic() + 20
    while waiting.get_status() != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    (src / "pkg" / "data.py").write_text("VALUE = 2\n")  # edited while the run is running
    go.touch()
    waiting.wait_for_completion()
    log = Path(waiting.get_details()["logFiles"]["user_logs/std_log.txt"]).read_text()
    assert "value 1 first" in log

    changed = _submit(workspace, src)
    changed.wait_for_completion()
    stats = changed.get_details()["snapshot"]
    assert stats["newFiles"] == 1 and stats["newBytes"] == len("VALUE = 2\n")


def test_restore_folder_and_zip_are_byte_identical(workspace: Workspace, awkward_dir: Path) -> None:
    src = _project(awkward_dir)
    run = _submit(workspace, src)
    run.wait_for_completion()
    dest = Path(run.restore_snapshot(path=awkward_dir / "restored"))
    for name in ("train.py", "pkg/data.py", "data.txt", "run.sh"):
        assert (dest / name).read_bytes() == (src / name).read_bytes()
    assert (dest / "run.sh").stat().st_mode & 0o111
    archive = Path(run.restore_snapshot(path=awkward_dir / "snap.zip"))
    with zipfile.ZipFile(archive) as zf:
        assert zf.read("pkg/data.py") == b"VALUE = 1\n"
    with pytest.raises(Exception, match="empty"):
        run.restore_snapshot(path=dest)  # refuses to write over an existing tree


def test_diff_between_runs(workspace: Workspace, awkward_dir: Path) -> None:
    src = _project(awkward_dir)
    a = _submit(workspace, src)
    (src / "data.txt").write_text("second\n")
    (src / "new.txt").write_text("n\n")
    (src / "run.sh").unlink()
    b = _submit(workspace, src)
    changes, text = a.diff(b)
    assert changes.added == ["new.txt"] or list(changes.added) == ["new.txt"]
    assert list(changes.removed) == ["run.sh"] and list(changes.changed) == ["data.txt"]
    assert "-first" in text and "+second" in text
    a.wait_for_completion()
    b.wait_for_completion()


def test_rerun_after_the_source_folder_was_deleted(workspace: Workspace, awkward_dir: Path) -> None:
    src = _project(awkward_dir)
    original = _submit(workspace, src)
    original.wait_for_completion()
    shutil.rmtree(src)
    again = original.rerun()
    details = again.wait_for_completion()
    assert details["status"] == "Completed"
    assert again.get_properties()["ferry.rerun_of"] == original.id
    assert again.get_snapshot_id() == original.get_snapshot_id()
    assert details["runDefinition"]["script"] == "train.py"
    log = Path(details["logFiles"]["user_logs/std_log.txt"]).read_text()
    assert "value 1 first" in log


def test_rerun_without_snapshot_needs_the_source(workspace: Workspace, awkward_dir: Path) -> None:
    src = _project(awkward_dir)
    config = ScriptRunConfig(str(src), "train.py")
    config.run_config.history.snapshot_project = False
    run = Experiment(workspace, "nosnap").submit(config)
    run.wait_for_completion()
    assert run.get_snapshot_id() is None
    with pytest.raises(ConfigError, match="no snapshot"):
        run.restore_snapshot(path=awkward_dir / "x")
    shutil.rmtree(src)
    with pytest.raises(ConfigError, match="cannot be rerun exactly"):
        run.rerun()


def test_git_state_is_kept_with_the_run(workspace: Workspace, awkward_dir: Path) -> None:
    import subprocess

    src = _project(awkward_dir)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@e", "-C", str(src)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run(
        [*git, "remote", "add", "origin", "https://example.invalid/team/repo.git"], check=True
    )
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    (src / "data.txt").write_text("uncommitted\n")
    (src / "scratch.txt").write_text("untracked\n")
    run = _submit(workspace, src)
    run.wait_for_completion()
    props = run.get_properties()
    assert props["azureml.git.repository_uri"] == "https://example.invalid/team/repo.git"
    assert props["mlflow.source.git.repoURL"] == props["azureml.git.repository_uri"]
    assert props["azureml.git.branch"] == "main" == props["mlflow.source.git.branch"]
    assert props["azureml.git.commit"] == head == props["mlflow.source.git.commit"]
    assert props["azureml.git.dirty"] == "True"
    kept = workspace.store.get_run(run.id).snapshot["git"]  # type: ignore[index]
    assert "+uncommitted" in kept["diff"] and "scratch.txt" in kept["untracked"]


def test_command_instead_of_script(workspace: Workspace, awkward_dir: Path) -> None:
    src = _project(awkward_dir)
    as_list = Experiment(workspace, "cmd").submit(
        ScriptRunConfig(str(src), command=["python", "-c", "print('from a list')"])
    )
    as_text = Experiment(workspace, "cmd").submit(
        ScriptRunConfig(str(src), command="echo from a shell && cat data.txt")
    )
    for run, expected in ((as_list, "from a list"), (as_text, "from a shell\nfirst")):
        details = run.wait_for_completion()
        assert expected in Path(details["logFiles"]["user_logs/std_log.txt"]).read_text()
