"""What an environment really needs built: the reference's defaults that ferry satisfies itself.

The reference's environments are *not* user-managed by default (its service builds a conda
environment from ``python.conda_dependencies``), and nearly every one lists ``azureml-defaults``,
which only brings the SDK's run context (``Run.get_context()``), an inference server and dataset
mounting. Inside a ferry run, ferry's in-job runtime provides the run context, and the rest has
nothing to serve. So, before anything is built or hashed:

* ``azureml-defaults`` and ``azureml-sdk`` (meta packages of the reference's SDK) are dropped, with
  a note in the build log. ``azureml-core`` named explicitly is kept: the runtime works with a real
  one too.
* an environment left declaring nothing — no packages, no conda packages, no Python version, no
  index options — runs with the target's own interpreter, as a user-managed one: the fast path
  of ``RunConfiguration()``'s default environment, which builds nothing.

Every consumer of an :class:`~ferry.spec.EnvironmentSpec` that builds or picks an interpreter
applies :func:`effective_environment` first (``resolve`` and the spec hash here; the SSH and Ray
targets on their hosts), so that one environment means the same thing on every target.

Example::

    spec = EnvironmentSpec(user_managed=False, pip=("azureml-defaults==1.8.0",))
    effective, notes = effective_environment(spec)
    effective.user_managed      # True: nothing is left to build
    notes                       # ("azureml-defaults==1.8.0: not installed — …",)
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ferry.envbuild.conda import IGNORED, conda_name
from ferry.envbuild.requirements import requirement_name

if TYPE_CHECKING:
    from ferry.spec import EnvironmentSpec

#: pip projects of the reference's SDK that a ferry run does not need installed, and why
SATISFIED_BY_FERRY = {
    "azureml-defaults": "ferry's in-job runtime provides Run.get_context(); the inference "
    "server and dataset mounting it adds have nothing to serve in a ferry run",
    "azureml-sdk": "a meta package of the reference's SDK; ferry's in-job runtime provides "
    "Run.get_context() (name azureml-core explicitly to install the real SDK)",
}


def satisfied_by_ferry(requirement: str) -> bool:
    """True for a pip requirement that ferry's runtime stands in for."""
    return requirement_name(requirement) in SATISFIED_BY_FERRY


def declares_nothing(env: EnvironmentSpec) -> bool:
    """True when ``env`` asks for nothing a build would provide (variables do not count: they
    are set at run time)."""
    conda = [p for p in env.conda if conda_name(p) not in IGNORED]
    return not (env.pip or conda or env.python or env.pip_options)


def effective_environment(env: EnvironmentSpec) -> tuple[EnvironmentSpec, tuple[str, ...]]:
    """``env`` as it is provided: packages ferry stands in for removed, and a built environment
    that declares nothing else turned into the target's interpreter. Returns the notes to log."""
    if env.user_managed:
        return env, ()
    dropped = [p for p in env.pip if satisfied_by_ferry(p)]
    notes = [
        f"{p}: not installed — {SATISFIED_BY_FERRY[requirement_name(p) or '']}" for p in dropped
    ]
    if dropped:
        env = dataclasses.replace(env, pip=tuple(p for p in env.pip if p not in dropped))
    if declares_nothing(env):
        if dropped:
            notes.append(
                f"environment {env.name!r}: nothing else to install, so the job runs with the "
                "target's own Python (no build)"
            )
        env = dataclasses.replace(env, user_managed=True, interpreter=None)
    return env, tuple(notes)
