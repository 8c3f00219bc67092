"""Heartbeats: a run whose supervisor stops beating is NotResponding, then Failed (pure rules + I/O).

The supervisor writes ``heartbeat_at`` every :func:`heartbeat_interval` seconds. Any reader
(``get_status``, ``wait_for_completion``, ``ferry runs list``) calls :func:`check` on runs that
are not terminal, so a supervisor killed with ``kill -9`` never leaves a run Running forever.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

from ferry.errors import InvalidTransition
from ferry.status import RunStatus
from ferry.tracking import RunRecord, RunStore


def heartbeat_interval() -> float:
    try:
        return max(0.05, float(os.environ.get("FERRY_HEARTBEAT_SECONDS", "5")))
    except ValueError:
        return 5.0


@dataclass(frozen=True)
class Verdict:
    """What a heartbeat check concluded about a run."""

    status: RunStatus | None  # the status to move to, or None to leave the run alone
    reason: str = ""


def judge(record: RunRecord, now: float, interval: float, supervisor_alive: bool | None) -> Verdict:
    """Decide from the last heartbeat (pure). ``supervisor_alive`` is None when unknown."""
    if record.status.is_terminal() or record.status == RunStatus.NOT_STARTED:
        return Verdict(None)
    last = record.heartbeat_at or record.created_at
    age = now - last
    stale_after = 3 * interval
    if age < stale_after:
        return Verdict(None)
    dead_after = (
        2 * stale_after if supervisor_alive is False else max(12 * interval, 2 * stale_after)
    )
    if age >= dead_after:
        who = (
            f"supervisor (pid {record.supervisor_pid} on {record.host})"
            if record.supervisor_pid
            else "supervisor"
        )
        return Verdict(
            RunStatus.FAILED,
            f"the run's {who} stopped sending heartbeats {age:.0f} s ago"
            + (" and is no longer running" if supervisor_alive is False else "")
            + "; the run was marked Failed. Resubmit it (ferry runs rerun) to try again.",
        )
    if record.status != RunStatus.NOT_RESPONDING:
        return Verdict(RunStatus.NOT_RESPONDING, f"no heartbeat for {age:.0f} s")
    return Verdict(None)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs on this machine (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def check(store: RunStore, record: RunRecord, now: float | None = None) -> RunRecord:
    """Apply :func:`judge` to a run; returns the (possibly updated) record."""
    now = time.time() if now is None else now
    alive: bool | None = None
    if record.supervisor_pid and record.host == socket.gethostname():
        alive = pid_alive(record.supervisor_pid)
    verdict = judge(record, now, heartbeat_interval(), alive)
    if verdict.status is None:
        return record
    try:
        if verdict.status == RunStatus.FAILED:
            if record.job_pgid and record.host == socket.gethostname():
                from ferry.targets.local import kill_group

                kill_group(record.job_pgid, 2.0)
            store.set_status(
                record.id,
                RunStatus.FAILED,
                error={"error": {"code": "NotResponding", "message": verdict.reason}},
            )
        else:
            store.set_status(record.id, verdict.status)
    except InvalidTransition:
        pass  # someone else moved it meanwhile; their word stands
    return store.get_run(record.id)
