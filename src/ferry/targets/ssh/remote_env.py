"""Which environment a job gets on an SSH host (pure: no connection, no files).

A built environment is identified by the same specification hash as on this machine
(:func:`ferry.envbuild.spechash.canonical_spec`), computed with the host's Python version and
platform, which the agent reports in its hello. The host builds it once under
``<work_dir>/envs/<hash>`` and every later run reuses it. User-managed environments run with
their interpreter: the environment's ``interpreter_path`` when it names one explicitly, else the
target's (``python3`` by default) — ferry's own interpreter path means nothing on another host.

Example::

    plan = plan_environment(env, hello, settings)
    plan.spec_hash          # None when user-managed
    plan.request            # what the agent's build_env needs
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ferry.envbuild import conda as conda_mod
from ferry.envbuild.remote import conda_packages, remote_build_request
from ferry.environment import Environment
from ferry.errors import EnvironmentBuildError
from ferry.targets.ssh.settings import SshSettings

_DEFAULT_INTERPRETERS = ("", "python", "python3")


@dataclass(frozen=True)
class RemoteEnvironment:
    """The interpreter to start, or the build to request, for one job on a host."""

    interpreter: str
    spec_hash: str | None = None
    request: dict[str, Any] | None = None
    variables: dict[str, str] = field(default_factory=dict)


def interpreter_for(env: Environment, settings: SshSettings) -> str:
    """The environment's interpreter if it names one for the host, else the target's."""
    path = env.python.interpreter_path or ""
    if path in _DEFAULT_INTERPRETERS or path == sys.executable:
        return settings.interpreter_path
    return path


def refusal(env: Environment) -> str | None:
    """Why the ssh target cannot run ``env`` (None when it can)."""
    if env.docker.enabled:
        return (
            f"environment {env.name!r} asks for Docker (env.docker.enabled = True); the ssh "
            "target runs without Docker; set env.docker.enabled = False"
        )
    if env.python.user_managed_dependencies:
        return None
    only = conda_mod.conda_only(conda_packages(env.to_spec()))
    if only:
        return (
            f"environment {env.name!r} needs conda-only packages ({', '.join(only)}); the ssh "
            "target installs with pip or uv: use pip packages, or a user-managed environment "
            "whose interpreter_path is a conda environment's python on the host"
        )
    return None


def plan_environment(
    env: Environment, hello: Mapping[str, Any], settings: SshSettings
) -> RemoteEnvironment:
    """Decide how ``env`` runs on the host that sent ``hello``."""
    problem = refusal(env)
    if problem:
        raise EnvironmentBuildError(problem)
    interpreter = interpreter_for(env, settings)
    variables = dict(env.environment_variables)
    if env.python.user_managed_dependencies:
        return RemoteEnvironment(interpreter, variables=variables)
    request, digest = remote_build_request(env.to_spec(), hello, interpreter, settings.uv)
    return RemoteEnvironment(interpreter, digest, request, variables)


def job_variables(
    *,
    run_id: str,
    experiment: str,
    run_dir: str,
    workdir: str,
    parent_run_id: str | None,
    user: Mapping[str, str],
) -> tuple[dict[str, str], list[str]]:
    """The variables a remote job sees on top of the host's (``set``) and those it must not.

    The same protocol variables as the local target's ``job_environment``, with host paths.
    """
    values = dict(user)
    values.update(
        {
            "PYTHONUNBUFFERED": "1",
            "FERRY_RUN_ID": run_id,
            "FERRY_EXPERIMENT": experiment,
            "FERRY_RUN_DIR": run_dir,
            "FERRY_SPOOL_DIR": f"{run_dir}/spool",
            "FERRY_OUTPUT_DIR": f"{workdir}/outputs",
            "AZUREML_OUTPUT_DIRECTORY": "./outputs",
        }
    )
    unset: list[str] = []
    if parent_run_id:
        values["FERRY_PARENT_RUN_ID"] = parent_run_id
    else:
        unset.append("FERRY_PARENT_RUN_ID")
    return values, unset
