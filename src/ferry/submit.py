"""Submitting a ScriptRunConfig: validate → snapshot → record the run (Queued) → launch.

Everything that can be wrong with the user's input is checked before anything is written, so a
bad submission leaves no half-written run behind.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry.compute import ComputeTarget
from ferry.environment import Environment
from ferry.errors import ConfigError, FerryError
from ferry.status import RunStatus
from ferry.tracking import RunRecord

if TYPE_CHECKING:
    from ferry.experiment import Experiment
    from ferry.run import Run
    from ferry.script_run_config import ScriptRunConfig


log = logging.getLogger("ferry")


def new_run_id(experiment: str) -> str:
    """``<experiment>_<unix-seconds>_<8 hex>``, as the reference."""
    return f"{experiment}_{int(time.time())}_{uuid.uuid4().hex[:8]}"


def validate_tags(tags: Mapping[str, Any] | None) -> dict[str, str | None]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise ConfigError("tags must be a mapping of names to values, like {'team': 'a'}")
    out: dict[str, str | None] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"tag names must be non-empty strings, got {key!r}")
        out[key] = None if value is None else str(value)
    return out


def snapshot_source(workspace: Any, source: Path) -> tuple[dict[str, Any], dict[str, str], float]:
    """Snapshot ``source`` into the workspace; returns (snapshot info, git properties, seconds)."""
    from ferry.snapshot import capture_git
    from ferry.snapshot import take_snapshot as snap

    t = time.monotonic()
    result = snap(
        source, workspace.blobs, workspace.cache_dir / "snapshots", exclude=[workspace.path]
    )
    info: dict[str, Any] = {
        "id": result.snapshot_id,
        "files": result.stats.files,
        "bytes": result.stats.bytes,
        "newFiles": result.stats.new_files,
        "newBytes": result.stats.new_bytes,
        "hashedFiles": result.stats.hashed_files,
        "seconds": result.stats.seconds,
        "warnings": list(result.warnings),
    }
    git = capture_git(source)
    props: dict[str, str] = {}
    if git is not None:
        props.update(git.properties)
        if git.diff or git.untracked:
            info["git"] = {"diff": git.diff, "untracked": list(git.untracked)}
    return info, props, time.monotonic() - t


def submit_script(
    experiment: Experiment,
    config: ScriptRunConfig,
    tags: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    parent_run_id: str | None = None,
) -> Run:
    """Submit a ScriptRunConfig to its compute target; returns the run handle at once."""
    from ferry.run import Run

    ws = experiment.workspace
    source = config.validate()
    rc = config.run_config

    compute = ComputeTarget(
        ws, rc.target
    )  # unknown target → clear error before anything is written
    env = rc.environment if isinstance(rc.environment, Environment) else Environment("default")
    if not env.python.user_managed_dependencies:
        env.spec_hash()  # a bad specification (Python version, requirement) fails before any write
    clean_tags = validate_tags(tags)
    run_id = run_id or new_run_id(experiment.name)
    definition = rc.to_dict()
    definition["sourceDirectory"] = str(source)
    definition["submittedBy"] = submitter()
    definition.update(data_bindings(ws, config.arguments, rc, run_id))
    check_job(ws, compute.type, rc.target, run_id, experiment.name, definition, parent_run_id)
    properties: dict[str, str] = {}
    snapshot: dict[str, Any] | None = None
    timings: dict[str, float] = {}
    if rc.history.snapshot_project:
        snapshot, properties, timings["snapshot"] = snapshot_source(ws, source)
        properties["ContentSnapshotId"] = snapshot["id"]
    record = RunRecord(
        id=run_id,
        experiment=experiment.name,
        status=RunStatus.QUEUED,
        parent_id=parent_run_id,
        target=rc.target,
        created_at=time.time(),
        heartbeat_at=time.time(),
        definition=definition,
        timings=timings,
        snapshot=snapshot,
        tags=clean_tags,
        properties=properties,
        run_dir=str(ws.runs_dir / run_id),
    )
    ws.store.create_run(record)
    _launch(ws, run_id)
    return Run(experiment, run_id)


def data_bindings(ws: Any, arguments: list[Any], rc: Any, run_id: str) -> dict[str, Any]:
    """The run's datasets as definition entries (``data``, ``outputData``): the versions it
    reads, fixed now (an unregistered dataset is saved as it is at submit), and the folders it
    writes. Empty when the run uses no dataset, which then costs no import."""
    holders = [
        getattr(rc, "data", None),
        getattr(rc, "output_data", None),
        getattr(rc, "data_references", None),
    ]
    values = [*arguments, *(v for h in holders if isinstance(h, dict) for v in h.values())]
    if not any(type(v).__module__.startswith("ferry.data.") for v in values):
        return {}
    from ferry.data.bindings import bind

    inputs, outputs = bind(ws, arguments, rc, run_id)
    return {"data": inputs, "outputData": outputs}


def check_job(
    ws: Any,
    kind: str,
    target: str,
    run_id: str,
    experiment: str,
    definition: dict[str, Any],
    parent_run_id: str | None = None,
) -> None:
    """Parse the definition as the supervisor will (one validator), and let the target kind
    refuse what it cannot run — before anything is written."""
    from ferry.jobdef import job_spec
    from ferry.targets.registry import target_class

    job = job_spec(
        run_id=run_id,
        experiment=experiment,
        target=target,
        run_dir=ws.runs_dir / run_id,
        definition=definition,
        parent_run_id=parent_run_id,
    )
    target_class(kind).check_job(target, job)
    for note in job.notes:
        log.warning("run %s: %s", run_id, note)


def _launch(ws: Any, run_id: str) -> None:
    """Start the recorded run's supervisor (here, or on the server holding a remote
    workspace: ``Workspace.start_run``); if that fails, the run is Failed, not left Queued."""
    from ferry.supervisor import launch_detached

    try:
        start = getattr(ws, "start_run", None)
        if start is not None:
            start(run_id)
        else:
            launch_detached(ws, run_id)
    except (OSError, FerryError) as exc:
        ws.store.set_status(
            run_id,
            RunStatus.FAILED,
            error={"error": {"code": "SystemError", "message": f"could not start the run: {exc}"}},
        )
        raise


def submitter() -> str:
    """Who submits: the login name, as the reference's ``submittedBy``."""
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return str(os.getuid())


_CARRIED_PROPERTIES = ("azureml.git.", "mlflow.source.git.", "ferry.git.")


def rerun(
    original: Run,
    compute_target: Any = None,
    experiment: Experiment | None = None,
    *,
    start: Callable[[str], object] | None = None,
) -> Run:
    """Submit ``original``'s stored snapshot again as a new run (``ferry.rerun_of``).

    ``start`` starts the recorded run instead of a supervisor here (the server queues it for
    its own supervisors)."""
    from ferry.compute import target_name
    from ferry.run import Run
    from ferry.snapshot import load_manifest

    ws = original.workspace
    record = original.record
    if record.run_type not in ("ferry.scriptrun",):
        raise ConfigError(
            f"run {original.id} is a {record.run_type} run; only submitted scripts can be rerun"
        )
    definition = dict(record.definition)
    definition["submittedBy"] = submitter()
    snapshot = dict(record.snapshot) if record.snapshot else None
    if snapshot is None:
        source = Path(str(definition.get("sourceDirectory", "")))
        if not source.is_dir():
            raise ConfigError(
                f"run {original.id} kept no snapshot and its source folder {str(source)!r} is gone; "
                "it cannot be rerun exactly"
            )
    else:
        load_manifest(ws.blobs, snapshot["id"])  # every blob is still there, or a clear error
        snapshot.update(newFiles=0, newBytes=0, hashedFiles=0, seconds=0.0, reused=True)
    if compute_target is not None:
        definition["target"] = target_name(compute_target)

    compute = ComputeTarget(ws, definition["target"])
    check_job(ws, compute.type, compute.name, original.id, original.experiment.name, definition)
    exp = experiment or original.experiment
    properties = {k: v for k, v in record.properties.items() if k.startswith(_CARRIED_PROPERTIES)}
    properties["ferry.rerun_of"] = original.id
    if snapshot is not None:
        properties["ContentSnapshotId"] = snapshot["id"]
    run_id = new_run_id(exp.name)
    ws.store.create_run(
        RunRecord(
            id=run_id,
            experiment=exp.name,
            status=RunStatus.QUEUED,
            target=definition["target"],
            created_at=time.time(),
            heartbeat_at=time.time(),
            definition=definition,
            snapshot=snapshot,
            tags=dict(record.tags),
            properties=properties,
            run_dir=str(ws.runs_dir / run_id),
        )
    )
    if start is None:
        _launch(ws, run_id)
    else:
        start(run_id)
    return Run(exp, run_id)
