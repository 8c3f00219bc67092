"""A sweep's children: ordinary runs ``HD_<uuid>_<n>`` sharing the sweep's one snapshot.

A child is recorded exactly as ``submit`` records a ScriptRunConfig's run (Queued, its own
definition and folder) and started by the same detached supervisor on whatever target the
definition names — but nothing is snapshotted again: every child carries the sweep's snapshot
(its id, and ``ContentSnapshotId`` with the git properties). Its sampled values are first kept
on the sweep run as the tag ``<sweep id>_<n>`` (the reference's place, which
``get_hyperparameters`` reads), then the child is created, then launched: a controller killed
between two of those steps finds, when restarted, the tag without a child (it creates it) or a
Queued child without a supervisor (it starts it).

Example::

    child_id = start_child(ws, sweep_record, spec, 3, {"--alpha": 0.25})   # "HD_…_3"
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from ferry.errors import FerryError, InvalidTransition
from ferry.hyperdrive.expressions import Scalar
from ferry.hyperdrive.sweep import SweepSpec, child_definition
from ferry.spec import WorkspaceServices
from ferry.status import RunStatus
from ferry.tracking import RunRecord

log = logging.getLogger("ferry.hyperdrive")

#: child properties copied from the sweep: the snapshot and the git state
_CARRIED = ("ContentSnapshotId", "azureml.git.", "mlflow.source.git.", "ferry.git.")


def child_id(sweep_id: str, index: int) -> str:
    return f"{sweep_id}_{index}"


def child_index(sweep_id: str, run_id: str) -> int | None:
    """``n`` of a child ``<sweep id>_<n>`` (None for any other id)."""
    prefix = f"{sweep_id}_"
    rest = run_id[len(prefix) :] if run_id.startswith(prefix) else ""
    return int(rest) if rest.isdigit() else None


def hyperparameters_tag(params: Mapping[str, Scalar]) -> str:
    """The JSON text the reference keeps per child (``get_hyperparameters`` returns it)."""
    return json.dumps(dict(params))


def record_parameters(
    ws: WorkspaceServices, sweep: RunRecord, index: int, params: Mapping[str, Scalar]
) -> None:
    """Keep child ``index``'s values on the sweep run before the child exists."""
    ws.store.set_tags(sweep.id, {child_id(sweep.id, index): hyperparameters_tag(params)})


def create_child(
    ws: WorkspaceServices,
    sweep: RunRecord,
    spec: SweepSpec,
    index: int,
    params: Mapping[str, Scalar],
) -> str:
    """Record child ``index`` (Queued) with the sweep's snapshot; returns its id."""
    run_id = child_id(sweep.id, index)
    now = time.time()
    properties = {k: v for k, v in sweep.properties.items() if k.startswith(_CARRIED)}
    snapshot = dict(sweep.snapshot) if sweep.snapshot else None
    if snapshot is not None:  # the sweep's snapshot, taken once: nothing was read or stored
        snapshot.update(newFiles=0, newBytes=0, hashedFiles=0, seconds=0.0, reused=True)
    ws.store.create_run(
        RunRecord(
            id=run_id,
            experiment=sweep.experiment,
            status=RunStatus.QUEUED,
            parent_id=sweep.id,
            target=sweep.target,
            created_at=now,
            heartbeat_at=now,
            definition=child_definition(spec.child_definition, params),
            timings={"snapshot": 0.0},
            snapshot=snapshot,
            properties=properties,
            run_dir=str(ws.runs_dir / run_id),
        )
    )
    return run_id


def launch_child(ws: WorkspaceServices, run_id: str) -> str | None:
    """Start a recorded child's supervisor; None, or why it could not start (the child is then
    Failed with that reason, never left Queued)."""
    from ferry.supervisor import launch_detached

    try:
        launch_detached(ws, run_id)
    except (OSError, FerryError) as exc:
        reason = f"could not start the run: {exc}"
        try:
            ws.store.set_status(
                run_id,
                RunStatus.FAILED,
                error={"error": {"code": "SystemError", "message": reason}},
            )
        except InvalidTransition:
            pass
        return reason
    return None


def start_child(
    ws: WorkspaceServices,
    sweep: RunRecord,
    spec: SweepSpec,
    index: int,
    params: Mapping[str, Scalar],
) -> str:
    """Tag, record and launch child ``index``; returns its id."""
    record_parameters(ws, sweep, index, params)
    run_id = create_child(ws, sweep, spec, index, params)
    launch_child(ws, run_id)
    return run_id


def cancel_child(ws: WorkspaceServices, run_id: str, reason: str | None = None) -> bool:
    """Ask a child to stop as ``Run.cancel()`` does (its supervisor ends it Canceled, keeping
    what it logged); ``reason`` is kept as the tag ``ferry.hyperdrive.terminated``."""
    store = ws.store
    record = store.get_run(run_id)
    if record.status.is_terminal():
        return False
    if record.status == RunStatus.CANCEL_REQUESTED:
        return True  # asked already: its first reason stays
    if reason:
        store.set_tags(run_id, {"ferry.hyperdrive.terminated": reason})
    if record.status == RunStatus.QUEUED and not record.supervisor_pid:
        try:  # recorded, never started (its controller died before launching it): ends here
            store.set_status(run_id, RunStatus.CANCELED, expected=RunStatus.QUEUED)
            return True
        except InvalidTransition:
            pass  # its supervisor has just started: it ends the run itself
    try:
        store.set_status(run_id, RunStatus.CANCEL_REQUESTED)
    except InvalidTransition:
        if store.get_run(run_id).status.is_terminal():
            return False
    run_dir = ws.runs_dir / run_id
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "cancel").touch()
    except OSError as exc:
        log.warning("run %s: cancel marker not written: %s", run_id, exc)
    return True


def child_parameters(sweep: RunRecord) -> dict[int, dict[str, Any]]:
    """Every child's values kept on the sweep run, by child number."""
    out: dict[int, dict[str, Any]] = {}
    for key, value in sweep.tags.items():
        index = child_index(sweep.id, key)
        if index is not None and value:
            try:
                params = json.loads(value)
            except ValueError:
                continue
            if isinstance(params, dict):
                out[index] = params
    return out
