"""The variables a job sees: one request for every target (``docs/runtime-protocol.md``).

A request is plain data — ``set`` (protocol variables, the environment's and the run's own
variables), ``prepend`` (``PYTHONPATH``: the runtime first) and ``unset`` — that the machine
starting the job applies to its own environment with :func:`ferry.agent.environ.apply_request`.
Paths are the job machine's (the run folder on an SSH host or a Ray node), never the submitter's.

Example::

    request = job_request(job, run_dir="/scratch/ferry/runs/e_1_ab", workdir="/scratch/…/wd",
                          runtime_path="/scratch/ferry/runtime/runtime-ab12",
                          environment={"VIRTUAL_ENV": "/envs/5f0c"})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ferry.spec import JobSpec


def protocol_variables(job: JobSpec, *, run_dir: str, workdir: str) -> dict[str, str]:
    """The runtime protocol's variables for a job whose run folder is ``run_dir`` there."""
    values = {
        "PYTHONUNBUFFERED": "1",
        "FERRY_RUN_ID": job.run_id,
        "FERRY_EXPERIMENT": job.experiment,
        "FERRY_RUN_DIR": run_dir,
        "FERRY_SPOOL_DIR": f"{run_dir}/spool",
        "FERRY_OUTPUT_DIR": f"{workdir}/outputs",
        "AZUREML_OUTPUT_DIRECTORY": "./outputs",
    }
    if job.parent_run_id:
        values["FERRY_PARENT_RUN_ID"] = job.parent_run_id
    return values


def job_request(
    job: JobSpec,
    *,
    run_dir: str,
    workdir: str,
    runtime_path: str,
    environment: Mapping[str, str] = {},
) -> dict[str, Any]:
    """The environment request for one job: ``environment`` (what the resolved environment
    sets, e.g. ``VIRTUAL_ENV`` and ``PATH``), the run's own variables, then the protocol's."""
    values = dict(environment)
    values.update(job.env_vars)
    values.update(protocol_variables(job, run_dir=run_dir, workdir=workdir))
    return {
        "set": values,
        "prepend": {"PYTHONPATH": runtime_path},
        "unset": [] if job.parent_run_id else ["FERRY_PARENT_RUN_ID"],
    }
