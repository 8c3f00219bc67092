"""Heartbeats: a run whose supervisor stops beating is NotResponding, then Failed (pure rules + I/O).

The supervisor writes ``heartbeat_at`` every :func:`heartbeat_interval` seconds. Readers
(``get_status``, ``wait_for_completion``, ``ferry runs list``) and every new supervisor call
:func:`sweep` or :func:`check`, so a supervisor killed with ``kill -9`` never leaves a run Running
forever, whether or not anyone lists that run.

Readers only write the run history: they never send a signal. The job of a dead supervisor is
stopped by its own watchdog (:mod:`ferry.agent.watchdog`), which notices the supervisor's end at
once. Whoever marks a run Failed first (a compare-and-set, so only one does) also takes in what
the dead supervisor left: the rest of the spool, the outputs it had already moved, the log — and
says in the error what is known (the script's exit code, where its outputs are).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from ferry.agent.proc import pid_alive
from ferry.errors import FerryError, InvalidTransition
from ferry.status import RunStatus
from ferry.tracking import ArtifactRecord, RunQuery, RunRecord, RunStore

LOG_NAME = "user_logs/std_log.txt"
_LIVE = [s for s in RunStatus if not s.is_terminal() and s != RunStatus.NOT_STARTED]


def heartbeat_interval() -> float:
    try:
        return max(0.05, float(os.environ.get("FERRY_HEARTBEAT_SECONDS", "5")))
    except ValueError:
        return 5.0


@dataclass(frozen=True)
class HeartbeatVerdict:
    """What a heartbeat check concluded about a run."""

    status: RunStatus | None  # the status to move to, or None to leave the run alone
    reason: str = ""


#: a supervisor whose process is seen alive is judged hung only after this long a silence (a
#: loaded machine can stall a heartbeat for seconds; a dead one is judged within 6 intervals)
LIVE_SILENCE_SECONDS = 60.0


def heartbeat_verdict(
    record: RunRecord, now: float, interval: float, supervisor_alive: bool | None
) -> HeartbeatVerdict:
    """Decide from the last heartbeat (pure). ``supervisor_alive`` is None when unknown."""
    if record.status.is_terminal() or record.status == RunStatus.NOT_STARTED:
        return HeartbeatVerdict(None)
    last = record.heartbeat_at or record.created_at
    age = now - last
    stale_after = 3 * interval
    if age < stale_after:
        return HeartbeatVerdict(None)
    if record.status == RunStatus.QUEUED and not record.supervisor_pid:
        return _never_started(record, age, interval)
    if supervisor_alive is False:
        dead_after = 2 * stale_after
    elif supervisor_alive is True:  # alive but silent: a busy machine, or truly hung
        dead_after = max(12 * interval, 2 * stale_after, LIVE_SILENCE_SECONDS)
    else:
        dead_after = max(12 * interval, 2 * stale_after)
    if age >= dead_after:
        who = (
            f"supervisor (pid {record.supervisor_pid} on {record.host})"
            if record.supervisor_pid
            else "supervisor"
        )
        return HeartbeatVerdict(
            RunStatus.FAILED,
            f"the run's {who} stopped sending heartbeats {age:.0f} s ago"
            + (" and is no longer running" if supervisor_alive is False else "")
            + "; the run was marked Failed. "
            + (
                "Open it with HyperDriveRun.get(ws, id) to resume it, or warm-start a new sweep "
                "with resume_from=[it]."
                if record.run_type == "hyperdrive"
                else "Resubmit it (ferry runs rerun) to try again."
            ),
        )
    if record.status != RunStatus.NOT_RESPONDING:
        return HeartbeatVerdict(RunStatus.NOT_RESPONDING, f"no heartbeat for {age:.0f} s")
    return HeartbeatVerdict(None)


def _never_started(record: RunRecord, age: float, interval: float) -> HeartbeatVerdict:
    """A run recorded but not yet taken up by a supervisor: there is no heartbeat to miss yet.
    Its start can take seconds on a loaded machine (many submits at once), so it is left
    Queued, and judged lost only after as long a silence as a live but silent supervisor."""
    dead_after = max(12 * interval, LIVE_SILENCE_SECONDS)
    if age < dead_after:
        return HeartbeatVerdict(None)
    return HeartbeatVerdict(
        RunStatus.FAILED,
        f"the run was recorded {age:.0f} s ago but no supervisor ever started it (the process "
        "that submitted it, or the server's supervisor pool, went away first); the run was "
        "marked Failed. Resubmit it (ferry runs rerun) to try again.",
    )


def check(store: RunStore, record: RunRecord, now: float | None = None) -> RunRecord:
    """Apply :func:`heartbeat_verdict` to a run; returns the (possibly updated) record. Sends no signal."""
    now = time.time() if now is None else now
    alive: bool | None = None
    if record.supervisor_pid and record.host == socket.gethostname():
        alive = pid_alive(record.supervisor_pid)
    verdict = heartbeat_verdict(record, now, heartbeat_interval(), alive)
    if verdict.status is None:
        return record
    try:
        if verdict.status == RunStatus.FAILED:
            error = {"error": {"code": "NotResponding", "message": verdict.reason}}
            store.set_status(record.id, RunStatus.FAILED, error=error, expected=record.status)
            recover(store, record, verdict.reason)
        else:
            store.set_status(record.id, verdict.status, expected=record.status)
    except InvalidTransition:
        pass  # someone else moved it meanwhile; their word stands
    return store.get_run(record.id)


def sweep(store: RunStore, now: float | None = None) -> int:
    """Check every run that is not over (one indexed query); returns how many changed."""
    changed = 0
    for record in store.list_runs(RunQuery(statuses=_LIVE)):
        if check(store, record, now).status != record.status:
            changed += 1
    return changed


def recover(store: RunStore, record: RunRecord, reason: str) -> None:
    """After marking a dead supervisor's run Failed: keep what it left (spool, outputs, log),
    say what is known in the error, and remove the working copy once the job is over."""
    if not record.run_dir:
        return
    run_dir = Path(record.run_dir)
    workspace = run_dir.parent.parent
    notes: list[str] = []

    def note(line: str) -> None:
        notes.append(line)

    from ferry.ingest import SpoolIngestor, artifact_dir, move_outputs, output_records

    try:
        SpoolIngestor(store, record.id, run_dir / "spool", workspace, note).drain()
    except (FerryError, OSError) as exc:
        notes.append(f"ferry: the rest of the spool could not be read: {exc}")
    exit_info = _exit_info(run_dir)
    outputs = artifact_dir(workspace, record.id) / "outputs"
    if exit_info is not None and exit_info.get("reason") == "exit":
        move_outputs(run_dir / "wd" / "outputs", outputs)  # the job's own outputs (local runs)
    known = {a.name for a in store.list_artifacts(record.id)}
    found = [a for a in output_records(outputs, workspace, record.id, note) if a.name not in known]
    log = run_dir / LOG_NAME
    if log.is_file() and LOG_NAME not in known:
        found.append(
            ArtifactRecord(record.id, LOG_NAME, str(log.relative_to(workspace)), log.stat().st_size)
        )
    store.add_artifacts(found)
    message = reason
    kept = [a for a in found if a.name.startswith("outputs/")]
    if exit_info is not None and exit_info.get("reason") == "lost":
        message += " Its job was stopped when the supervisor died."
    elif exit_info is not None and isinstance(exit_info.get("code"), int):
        message += f" The script had exited with code {exit_info['code']}."
    if kept:
        message += f" Its {len(kept)} output file(s) are kept with the run."
    notes.append(f"ferry: {message}")
    _append(log, notes)
    error = {"error": {"code": "NotResponding", "message": message}}
    if exit_info is not None:
        error["exitCode"] = exit_info.get("code")  # type: ignore[assignment]
    store.update_run(record.id, error=error)
    if exit_info is not None and not os.environ.get("FERRY_KEEP_WORKDIR"):
        shutil.rmtree(run_dir / "wd", ignore_errors=True)  # the job is over: its copy can go


def _exit_info(run_dir: Path) -> dict[str, object] | None:
    try:
        data = json.loads((run_dir / "exit.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _append(log: Path, lines: list[str]) -> None:
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write("".join(f"{line}\n" for line in lines))
    except OSError:
        pass
