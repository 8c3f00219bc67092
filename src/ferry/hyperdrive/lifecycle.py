"""A sweep's own log and its end — shared by the controller, its keeper and the run handle.

The sweep's log (``runs/HD_…/user_logs/std_log.txt``, what ``wait_for_completion(show_output=True)``
streams) holds one line per event, in the reference's ``[time][SOURCE][LEVEL]`` spirit::

    [2026-05-01T10:00:00Z][GENERATOR][INFO] HD_…_3 started: {"--alpha": 0.41}
    [2026-05-01T10:00:02Z][POLICY][INFO] HD_…_1 terminated at interval 5: … (Bandit)

:func:`end_sweep` ends a sweep once: its live children are asked to stop, the status is set (a
sweep asked to cancel ends Canceled), a line is logged and the ``done`` marker touched, so that
followers stop.
"""

from __future__ import annotations

import os
import time
from typing import Any

from ferry.errors import InvalidTransition
from ferry.hyperdrive import children as kids
from ferry.hyperdrive.state import error_message
from ferry.spec import RunPaths, WorkspaceServices
from ferry.status import RunStatus
from ferry.tracking import RunQuery

LIVE = [s for s in RunStatus if not s.is_terminal()]


def sweep_log(ws: WorkspaceServices, sweep_id: str, message: str, kind: str = "CONTROLLER") -> None:
    """A line of the sweep's own log (what ``wait_for_completion(show_output=True)`` shows)."""
    path = RunPaths(ws.runs_dir / sweep_id).log
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8", errors="backslashreplace") as fh:
        fh.write(f"[{stamp}Z][{kind}][INFO] {message}\n")


def end_sweep(
    ws: WorkspaceServices, sweep_id: str, status: RunStatus, error: dict[str, Any] | None
) -> None:
    """End the sweep with ``status`` (unless it has ended), stopping its live children."""
    store = ws.store
    for child in store.list_runs(RunQuery(parent_id=sweep_id, statuses=LIVE)):
        kids.cancel_child(ws, child.id, "the sweep ended")
    current = store.get_run(sweep_id).status
    if not current.is_terminal():
        if current == RunStatus.CANCEL_REQUESTED and status == RunStatus.COMPLETED:
            status = RunStatus.CANCELED
        try:
            store.set_status(sweep_id, status, error=error)
        except InvalidTransition:
            pass
        message = error_message(error)
        sweep_log(ws, sweep_id, f"sweep {status.value}" + (f": {message}" if message else ""))
    (ws.runs_dir / sweep_id / "done").touch()
