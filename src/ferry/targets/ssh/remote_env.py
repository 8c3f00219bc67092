"""Which environment a job gets on an SSH host (pure: no connection, no files).

A Docker run gets its image on the host's engine instead (:mod:`ferry.targets.ssh.remote_docker`).

A built environment is identified by the same specification hash as on this machine
(:func:`ferry.envbuild.spechash.canonical_spec`), computed with the host's Python version and
platform and the agent's build recipe, which the agent reports in its hello. The host builds it
once under ``<work_dir>/envs/<hash>`` and every later run reuses it. User-managed environments
run with their interpreter: the one the environment names, else the target's
(``interpreter_path``, ``python3`` by default) — the host's own Python.

Example::

    plan = plan_environment(job.environment, hello, settings)
    plan.spec_hash          # None when user-managed
    plan.request            # what the agent's build_env needs
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ferry.envbuild import conda as conda_mod
from ferry.envbuild.remote import conda_packages, remote_build_request
from ferry.spec import EnvironmentSpec
from ferry.targets.ssh.settings import SshSettings


@dataclass(frozen=True)
class RemoteEnvironment:
    """The interpreter to start, or the build to request, for one job on a host."""

    interpreter: str
    spec_hash: str | None = None
    request: dict[str, Any] | None = None
    variables: dict[str, str] = field(default_factory=dict)


def refusal(env: EnvironmentSpec) -> str | None:
    """Why the ssh target cannot run ``env`` (None when it can)."""
    if env.docker.wanted or env.user_managed:  # a Docker run: its image decides the rest
        return None
        return None
    only = conda_mod.conda_only(conda_packages(env))
    if only:
        return (
            f"environment {env.name!r} needs conda-only packages ({', '.join(only)}); the ssh "
            "target installs with pip or uv: use pip packages, or a user-managed environment "
            "whose interpreter_path is a conda environment's python on the host"
        )
    return None


def plan_environment(
    env: EnvironmentSpec, hello: Mapping[str, Any], settings: SshSettings
) -> RemoteEnvironment:
    """Decide how ``env`` runs on the host that sent ``hello`` (``refusal`` checked first)."""
    interpreter = env.interpreter or settings.interpreter_path
    variables = dict(env.variables)
    if env.user_managed:
        return RemoteEnvironment(interpreter, variables=variables)
    request, digest = remote_build_request(env, hello, interpreter, settings.uv)
    return RemoteEnvironment(interpreter, digest, request, variables)
