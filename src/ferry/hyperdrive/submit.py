"""Submitting a sweep: validate → snapshot once → record the sweep run (Queued) → start its
controller. Returns the :class:`~ferry.hyperdrive.run.HyperDriveRun` at once.

Everything that can be wrong is checked before anything is written, as for a single run: the
ScriptRunConfig (folder, script, target, environment), the job as its first child would run it
(the target kind's own checks), and what the machine can hold. The source is snapshotted once,
here; every child records the same snapshot. A parameter of the space already present in the
script's arguments is removed from them, with the reference's warning, since each child gets
the sampled value instead.

Example::

    run = submit_sweep(experiment, hyperdrive_config, tags={"team": "a"})
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ferry.errors import ConfigError, FerryError, RunNotFound
from ferry.hyperdrive.draws import draw_point, grid_point
from ferry.hyperdrive.sweep import RUN_TYPE, child_definition, remove_parameters
from ferry.status import RunStatus
from ferry.tracking import RunRecord

if TYPE_CHECKING:
    from ferry.experiment import Experiment
    from ferry.hyperdrive.config import HyperDriveConfig
    from ferry.hyperdrive.run import HyperDriveRun

#: processes one local child needs at once (its supervisor, the job's watchdog, the job)
PROCESSES_PER_LOCAL_CHILD = 3


def _sweep_id(config: HyperDriveConfig, experiment: Experiment) -> str:
    run_id = config._custom_run_id or f"HD_{uuid.uuid4()}"
    try:
        experiment.workspace.store.get_run(run_id)
    except RunNotFound:
        return run_id
    raise ConfigError(f"a run with id {run_id!r} exists already; choose another custom_run_id")


def _check_capacity(kind: str, concurrent: int) -> None:
    """A local sweep must fit in this user's process limit (each child is a few processes)."""
    if kind != "local":
        return
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    if soft == resource.RLIM_INFINITY:
        return
    needed = concurrent * PROCESSES_PER_LOCAL_CHILD
    if needed > soft:
        raise ConfigError(
            f"max_concurrent_runs={concurrent} needs about {needed} processes on this machine "
            f"at once, above this user's limit of {soft} (ulimit -u); lower "
            "max_concurrent_runs or raise the limit"
        )


def _first_point(config: HyperDriveConfig, seed: int) -> dict[str, Any]:
    spec = config.hyperparameter_sampling.spec
    if spec.method == "GRID":
        return grid_point(spec.space, 0)
    if spec.method == "BayesianOptimization":  # a value of each, only to check the command line
        return {
            name: expr.options[0] if expr.kind == "choice" else expr.args[0]
            for name, expr in spec.space
        }
    return draw_point(spec.space, seed, 0)


def _reference_tags(stored: Mapping[str, Any]) -> dict[str, str]:
    """The tags the reference keeps on a sweep run (its configuration, as JSON text)."""
    return {
        "generator_config": json.dumps(stored["generator_config"]),
        "policy_config": json.dumps(stored["policy_config"]),
        "primary_metric_config": json.dumps(stored["primary_metric_config"]),
        "max_total_jobs": str(stored["max_total_jobs"]),
        "max_concurrent_jobs": str(stored["max_concurrent_jobs"]),
        "max_duration_minutes": str(stored["max_duration_minutes"]),
    }


def submit_sweep(
    experiment: Experiment,
    config: HyperDriveConfig,
    tags: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> HyperDriveRun:
    """Start a sweep; returns its run at once (the controller runs detached)."""
    from ferry.compute import ComputeTarget
    from ferry.environment import Environment
    from ferry.hyperdrive.keeper import launch_controller
    from ferry.hyperdrive.run import HyperDriveRun
    from ferry.submit import check_job, data_bindings, snapshot_source, submitter, validate_tags

    if kwargs:
        raise ConfigError(
            f"unknown submit arguments for a sweep: {', '.join(sorted(kwargs))}; a "
            "HyperDriveConfig takes tags= (set custom_run_id on the config)"
        )
    ws = experiment.workspace
    src = config.script_run_config()
    source = src.validate()
    rc = src.run_config
    compute = ComputeTarget(ws, rc.target)
    env = rc.environment if isinstance(rc.environment, Environment) else Environment("default")
    if not env.python.user_managed_dependencies:
        env.spec_hash()
    clean_tags = validate_tags(tags)
    definition = rc.to_dict()
    definition["sourceDirectory"] = str(source)
    definition["submittedBy"] = submitter()
    sweep_id = _sweep_id(config, experiment)
    # the children read the dataset versions fixed now ({run-id} in an output is each child's)
    definition.update(data_bindings(ws, src.arguments, rc, sweep_id))
    sampling = config.hyperparameter_sampling.spec
    definition["arguments"], removed = remove_parameters(definition["arguments"], sampling.names)
    if removed:
        warnings.warn(
            "The same input parameter(s) are specified in estimator/run_config script params "
            "and HyperDrive parameter space. HyperDrive parameter space definition will override "
            f"these duplicate entries. {removed} is the list of overridden parameter(s).",
            stacklevel=4,
        )
    seed = sampling.seed if sampling.seed is not None else secrets.randbelow(2**31)
    check_job(
        ws,
        compute.type,
        rc.target,
        f"{sweep_id}_0",
        experiment.name,
        child_definition(definition, _first_point(config, seed)),
        parent_run_id=sweep_id,
    )
    _check_capacity(compute.type, config._max_concurrent_runs)
    stored = config._spec(definition, seed).to_stored()
    properties: dict[str, str] = {}
    snapshot: dict[str, Any] | None = None
    timings: dict[str, float] = {}
    if rc.history.snapshot_project:
        snapshot, properties, timings["snapshot"] = snapshot_source(ws, source)
        properties["ContentSnapshotId"] = snapshot["id"]
    now = time.time()
    ws.store.create_run(
        RunRecord(
            id=sweep_id,
            experiment=experiment.name,
            status=RunStatus.QUEUED,
            target=rc.target,
            run_type=RUN_TYPE,
            created_at=now,
            heartbeat_at=now,
            definition=stored,
            timings=timings,
            snapshot=snapshot,
            tags={**_reference_tags(stored), **clean_tags},
            properties={
                **properties,
                "primary_metric_config": json.dumps(stored["primary_metric_config"]),
                "platform": "AML",
            },
            run_dir=str(ws.runs_dir / sweep_id),
        )
    )
    try:
        launch_controller(ws.path, ws.runs_dir, sweep_id)
    except (OSError, FerryError) as exc:
        ws.store.set_status(
            sweep_id,
            RunStatus.FAILED,
            error={
                "error": {"code": "SystemError", "message": f"could not start the sweep: {exc}"}
            },
        )
        raise
    return HyperDriveRun(experiment, sweep_id, hyperdrive_config=config)
