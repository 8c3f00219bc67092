"""The supervisor, ingestion and liveness, driven by the scripted fake target (no job process)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ferry import ComputeTarget, Run, Workspace
from ferry.liveness import check
from ferry.status import RunStatus
from ferry.testing.fake import FakeCompute, supervise_here
from ferry.tracking import RunRecord

LOG = "user_logs/std_log.txt"


def _record(ws: Workspace, script: dict[str, Any], name: str = "fake") -> str:
    """A Queued run on a fake target with ``script``, not yet supervised."""
    ComputeTarget.attach(ws, name, FakeCompute.attach_configuration(**script))
    run_id = f"exp_{int(time.time())}_{os.urandom(4).hex()}"
    ws.store.create_run(
        RunRecord(
            id=run_id,
            experiment="exp",
            status=RunStatus.QUEUED,
            target=name,
            created_at=time.time(),
            heartbeat_at=time.time(),
            definition={"script": "t.py", "target": name},
            run_dir=str(ws.runs_dir / run_id),
        )
    )
    return run_id


def _log(ws: Workspace, run_id: str) -> str:
    return (ws.runs_dir / run_id / LOG).read_text(encoding="utf-8")


def test_a_long_preparation_keeps_the_run_alive(workspace: Workspace) -> None:
    run_id = _record(workspace, {"prepare_seconds": 2.0})  # > 3 heartbeats at 0.3 s
    result: list[RunStatus] = []
    thread = threading.Thread(target=lambda: result.append(supervise_here(workspace, run_id)))
    thread.start()
    seen = set()
    run = Run.get(workspace, run_id)
    while thread.is_alive():
        seen.add(run.get_status())  # each read judges the heartbeat
        time.sleep(0.05)
    thread.join()
    assert "Preparing" in seen and "NotResponding" not in seen
    assert result == [RunStatus.COMPLETED]


def test_a_job_writes_only_its_own_run(workspace: Workspace) -> None:
    victim = _record(workspace, {}, name="victim")
    workspace.store.set_status(victim, RunStatus.PREPARING)
    escape = "../../../../../../tmp/evil"
    spool = [
        {"k": "metric", "name": "mine", "value": 1},
        {"k": "metric", "run": victim, "name": "injected", "value": 666},
        {"k": "tags", "run": victim, "set": {"tampered": "yes"}},
        {"k": "status", "run": victim, "status": "Completed", "error": None},
        {"k": "child", "run": escape, "parent": None, "name": "x", "tags": {}},
        {"k": "file", "run": escape, "name": "p.txt", "path": "files/x/p.txt"},
        {"k": "child", "run": victim, "name": "hijack", "tags": {}},
        {"k": "tags", "set": {"ok": "1"}},
    ]
    run_id = _record(workspace, {"spool": spool, "exit_code": 3})
    assert supervise_here(workspace, run_id) == RunStatus.FAILED  # exit 3 stays a failure
    store = workspace.store
    assert store.get_run(victim).status == RunStatus.PREPARING
    assert "tampered" not in store.get_run(victim).tags
    assert store.get_series([victim]) == []
    assert [s.name for s in store.get_series([run_id])] == ["mine"]
    assert store.get_run(run_id).tags["ok"] == "1"  # records after the refused ones still land
    assert not Path("/tmp/evil").exists()
    text = _log(workspace, run_id)
    assert text.count("spool record ignored") >= 5 and victim in text


def test_a_job_cannot_set_its_own_status(workspace: Workspace) -> None:
    run_id = _record(
        workspace,
        {"spool": [{"k": "status", "status": "Completed", "error": None}], "exit_code": 3},
    )
    assert supervise_here(workspace, run_id) == RunStatus.FAILED
    assert "supervisor does" in _log(workspace, run_id)


def test_malformed_records_are_skipped_and_the_rest_ingested(workspace: Workspace) -> None:
    lines = [
        "not json at all",
        json.dumps({"k": "metric"}),  # no name
        json.dumps({"k": "series", "name": "s", "values": 5}),  # wrong type
        json.dumps([1, 2, 3]),  # not an object
        json.dumps({"k": "tags", "set": ["a"]}),
        json.dumps({"k": "untag"}),
        json.dumps({"k": "metric", "name": "x", "value": 1, "step": -1}),
        json.dumps({"k": "weird"}),
        json.dumps({"k": "metric", "name": "good", "value": 2}),
    ]
    run_id = _record(workspace, {"spool_lines": lines})
    assert supervise_here(workspace, run_id) == RunStatus.COMPLETED  # exit 0 stays a success
    assert workspace.store.get_series([run_id])[0].values == [2]
    assert _log(workspace, run_id).count("spool record ignored") == 8


def test_children_files_and_their_checks(workspace: Workspace) -> None:
    child = f"exp_{int(time.time())}_{os.urandom(4).hex()}"
    spool = [
        {"k": "child", "run": child, "name": "fold-1", "tags": {"f": "1"}},
        {"k": "metric", "run": child, "name": "acc", "value": 0.9},
        {"k": "status", "run": child, "status": "Completed", "error": None},
        {"k": "file", "name": "notes/a.txt", "path": "files/{run}/notes/a.txt"},
        {"k": "file", "name": "../b.txt", "path": "files/x/b.txt"},
        {"k": "file", "name": "c.txt", "path": "../../../etc/hostname"},
    ]
    run_id = _record(workspace, {"spool": spool})
    # the fake writes the files under the run's own id; fix up the record's path
    cfg = workspace.store.get_target("fake")
    assert cfg is not None
    script = dict(cfg[1])
    script["spool"][3]["path"] = f"files/{run_id}/notes/a.txt"
    script["files"] = {"notes/a.txt": "hello"}
    workspace.store.save_target("fake", "fake", script)
    assert supervise_here(workspace, run_id) == RunStatus.COMPLETED
    store = workspace.store
    assert store.get_run(child).parent_id == run_id
    assert store.get_run(child).status == RunStatus.COMPLETED
    assert store.get_series([child])[0].values == [0.9]
    names = [a.name for a in store.list_artifacts(run_id)]
    assert "notes/a.txt" in names and "b.txt" not in names and "c.txt" not in names


def test_a_spool_link_is_never_taken(workspace: Workspace, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    run_id = _record(workspace, {})
    files = workspace.runs_dir / run_id / "spool" / "files" / run_id
    files.mkdir(parents=True)
    (files / "s.txt").symlink_to(secret)
    spool = [{"k": "file", "name": "s.txt", "path": f"files/{run_id}/s.txt"}]
    script = {"spool": spool}
    workspace.store.save_target("fake", "fake", script)
    assert supervise_here(workspace, run_id) == RunStatus.COMPLETED
    assert "s.txt" not in [a.name for a in workspace.store.list_artifacts(run_id)]
    assert secret.read_text() == "secret"


def test_fail_from_the_driver_ends_the_run_failed(workspace: Workspace) -> None:
    run_id = _record(workspace, {"run_seconds": 30, "outputs": {"m.txt": "model"}})
    result: list[RunStatus] = []
    thread = threading.Thread(target=lambda: result.append(supervise_here(workspace, run_id)))
    thread.start()
    store = workspace.store
    deadline = time.monotonic() + 10
    while store.get_run(run_id).status != RunStatus.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    error = {"error": {"code": "UserError", "message": "stopped by the driver"}}
    store.set_status(run_id, RunStatus.FAILED, error=error)
    thread.join(20)
    assert not thread.is_alive() and result == [RunStatus.FAILED]
    record = store.get_run(run_id)
    assert record.error == error
    assert "marked Failed from outside" in _log(workspace, run_id)


def test_offline_logging_is_called_out(workspace: Workspace) -> None:
    printed = ["Attempted to log scalar metric loss:", "0.3"] * 3
    run_id = _record(workspace, {"log": printed})
    assert supervise_here(workspace, run_id) == RunStatus.COMPLETED
    assert "printed 3 value(s)" in _log(workspace, run_id)


def test_a_traceback_error_is_its_exception_line() -> None:
    from ferry.supervisor import exception_line

    lines = [
        "epoch 1",
        "Traceback (most recent call last):",
        '  File "t.py", line 3, in <module>',
        "    raise RuntimeError(msg)",
        "    ^^^^^^^^^^^^^^^^^^^^^^^",
        "RuntimeError: download failed",
        "see the docs at",
        "https://example.invalid/help",
    ]
    assert exception_line(lines) == "RuntimeError: download failed"
    chained = [*lines, "", "During handling of the above exception, another exception occurred:"]
    chained += ["", "Traceback (most recent call last):", '  File "t.py"', "KeyError: 'x'"]
    assert exception_line(chained) == "KeyError: 'x'"
    assert exception_line(["no traceback here"]) == ""


def test_the_logs_mirror_copies_only_what_was_appended(workspace: Workspace) -> None:
    from ferry.supervisor import _Mirror

    notes: list[str] = []
    mirror = _Mirror(workspace.store, "r_1_abcdef12", workspace.path, notes.append)
    logs = workspace.path / "scratch" / "logs"
    logs.mkdir(parents=True)
    (logs / "a.txt").write_bytes(b"x" * 1000)
    (logs / "link").symlink_to("/etc/hostname")
    mirror.sync({"logs": logs})
    dest = workspace.path / "runs" / "r_1_abcdef12" / "artifacts" / "logs" / "a.txt"
    assert dest.read_bytes() == b"x" * 1000
    dest.write_bytes(b"y" * 1000)  # marks what was copied already: an append must not rewrite it
    with open(logs / "a.txt", "ab") as fh:
        fh.write(b"z" * 10)
    mirror.sync({"logs": logs})
    assert dest.read_bytes() == b"y" * 1000 + b"z" * 10
    (logs / "a.txt").write_bytes(b"short")  # shrank: copied whole
    mirror.sync({"logs": logs})
    assert dest.read_bytes() == b"short"
    assert not (dest.parent / "link").exists()
    assert any("link" in n for n in notes)
    sizes = {a.name: a.size for a in workspace.store.list_artifacts("r_1_abcdef12")}
    assert sizes == {"logs/a.txt": 5}


def test_a_dead_supervisors_run_is_failed_with_nothing_lost(workspace: Workspace) -> None:
    run_id = _record(workspace, {})
    run_dir = workspace.runs_dir / run_id
    store = workspace.store
    store.set_status(run_id, RunStatus.PREPARING)
    store.set_status(run_id, RunStatus.RUNNING)
    spool = run_dir / "spool"
    spool.mkdir(parents=True)
    values = list(range(5000))
    (spool / "1-ab.jsonl").write_text(
        json.dumps({"k": "series", "run": run_id, "name": "m", "values": values, "ts": 1.0}) + "\n"
    )
    outputs = run_dir / "artifacts" / "outputs"
    outputs.mkdir(parents=True)
    (outputs / "model.bin").write_bytes(b"m" * 10)  # moved before the supervisor died
    (run_dir / "wd" / "outputs").mkdir(parents=True)
    (run_dir / "wd" / "outputs" / "late.txt").write_text("not moved yet")
    (run_dir / "exit.json").write_text(json.dumps({"code": 0, "reason": "exit"}))
    # an unrelated process group stands in for a job whose pid was reused
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        dead = subprocess.Popen(["true"])
        dead.wait()
        store.update_run(
            run_id, supervisor_pid=dead.pid, host=os.uname().nodename, job_pgid=bystander.pid
        )
        store.update_run(run_id, heartbeat_at=time.time() - 60)
        record = check(store, store.get_run(run_id))
        assert record.status == RunStatus.FAILED
        assert bystander.poll() is None  # a reader never sends a signal
    finally:
        bystander.kill()
        bystander.wait()
    assert store.get_series([run_id])[0].values == values  # the spool's rest was taken in
    names = {a.name for a in store.list_artifacts(run_id)}
    assert {"outputs/model.bin", "outputs/late.txt"} <= names
    assert not (run_dir / "wd").exists()  # the job is over: its working copy is gone
    message = record.error["error"]["message"] if record.error else ""
    assert "exited with code 0" in message and "2 output file(s)" in message
    # a second reader finds it terminal and adds nothing
    check(store, store.get_run(run_id))
    assert sum(len(s.values) for s in store.get_series([run_id])) == len(values)


def test_orphans_are_found_without_listing_them(workspace: Workspace) -> None:
    from ferry.liveness import sweep

    ids = [_record(workspace, {}) for _ in range(3)]
    for run_id in ids:
        workspace.store.update_run(run_id, heartbeat_at=time.time() - 3600)
    assert sweep(workspace.store) == 3
    assert {workspace.store.get_run(i).status for i in ids} == {RunStatus.FAILED}


@pytest.mark.parametrize("bad", [{"exit_code": True}, {"nope": 1}, {"log": "x"}])
def test_a_bad_fake_script_is_refused(bad: dict[str, Any]) -> None:
    from ferry.errors import ConfigError

    with pytest.raises(ConfigError):
        FakeCompute.attach_configuration(**bad)


def test_a_second_supervisor_of_the_same_run_leaves(workspace: Workspace) -> None:
    """A zygote that answered too late, so the submitter spawned a supervisor too: the run
    still has exactly one."""
    from ferry.supervisor import supervise

    run_id = _record(
        workspace, {"run_seconds": 1.0, "spool": [{"k": "metric", "name": "m", "value": 1}]}
    )
    first = threading.Thread(target=lambda: supervise_here(workspace, run_id))
    from ferry.supervisor import _one_supervisor

    held = _one_supervisor(workspace.runs_dir / run_id)
    assert held is not None
    umask = os.umask(0o022)  # supervise sets the umask of its (normally dedicated) process
    try:
        assert supervise(workspace, run_id) == 0  # leaves at once: the lock is held
        assert workspace.store.get_run(run_id).status == RunStatus.QUEUED
    finally:
        os.umask(umask)
        os.close(held)
    first.start()
    first.join(30)
    assert workspace.store.get_run(run_id).status == RunStatus.COMPLETED
    assert workspace.store.get_series([run_id])[0].values == [1]


def test_notes_after_the_job_ended_reach_the_log_even_if_its_watchdog_is_gone(
    workspace: Workspace,
) -> None:
    """While the job runs its watchdog writes ferry's lines; the notes of the last spool read
    come after the job's end, when its watchdog takes no more: the supervisor writes them."""
    forged = [{"k": "status", "status": "Completed", "error": None}] * 3
    run_id = _record(workspace, {"spool": forged, "exit_code": 3, "watchdog_notes": True})
    assert supervise_here(workspace, run_id) == RunStatus.FAILED
    assert _log(workspace, run_id).count("spool record ignored") == 3
