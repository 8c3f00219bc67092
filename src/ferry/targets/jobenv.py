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

import os
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


#: where the supervisor learns that its run was submitted to a server (set by the server's
#: supervisor pool, :mod:`ferry.server.worker`): the server's URL and a token for this run only
SERVER_URI_VARIABLE = "FERRY_MLFLOW_TRACKING_URI"
RUN_TOKEN_VARIABLE = "FERRY_TOKEN_RUN"
#: MLflow's tracking URI inside a job of a local workspace: ferry's MLflow plugin writes the
#: job's MLflow calls into its spool (:mod:`ferry.tracking.mlflow_plugin`)
SPOOL_TRACKING_URI = "ferry:job"


def mlflow_variables(job: JobSpec, supervisor_env: Mapping[str, str]) -> dict[str, str]:
    """``MLFLOW_RUN_ID`` and ``MLFLOW_TRACKING_URI`` so that ``mlflow.log_metric`` in the
    script lands in this run: through the server with a run-scoped token when the run was
    submitted to one, else through the run's spool."""
    uri = supervisor_env.get(SERVER_URI_VARIABLE)
    token = supervisor_env.get(RUN_TOKEN_VARIABLE)
    if uri and token:
        return {
            "MLFLOW_RUN_ID": job.run_id,
            "MLFLOW_TRACKING_URI": uri,
            "MLFLOW_TRACKING_TOKEN": token,
        }
    return {"MLFLOW_RUN_ID": job.run_id, "MLFLOW_TRACKING_URI": SPOOL_TRACKING_URI}


def job_request(
    job: JobSpec,
    *,
    run_dir: str,
    workdir: str,
    runtime_path: str,
    environment: Mapping[str, str] = {},
) -> dict[str, Any]:
    """The environment request for one job: ``environment`` (what the resolved environment
    sets, e.g. ``VIRTUAL_ENV`` and ``PATH``), MLflow's (:func:`mlflow_variables`), the run's own
    variables (which may override MLflow's), then the protocol's."""
    values = dict(environment)
    values.update(mlflow_variables(job, os.environ))
    values.update(job.env_vars)
    values.update(protocol_variables(job, run_dir=run_dir, workdir=workdir))
    return {
        "set": values,
        "prepend": {"PYTHONPATH": runtime_path},
        "unset": [] if job.parent_run_id else ["FERRY_PARENT_RUN_ID"],
    }
