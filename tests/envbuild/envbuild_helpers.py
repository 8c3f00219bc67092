"""Helpers for the environment build tests: small environments and a script runner."""

from __future__ import annotations

import os
import subprocess

from ferry.envbuild import ResolvedEnvironment
from ferry.environment import CondaDependencies, Environment
from ferry.spec import EnvironmentSpec


def spec_of(deps: CondaDependencies, name: str = "test") -> EnvironmentSpec:
    """The spec of a built environment with these packages."""
    return EnvironmentSpec(
        name=name,
        user_managed=False,
        python=deps.python_version,
        pip=tuple(deps.pip_packages),
        pip_options=tuple(deps.pip_options),
        conda=tuple(deps.conda_packages),
        channels=tuple(deps.channels),
    )


def pip_env(name: str, *packages: str, python: str | None = None) -> Environment:
    env = Environment(name)
    env.python.conda_dependencies = CondaDependencies.create(
        pip_packages=list(packages), python_version=python
    )
    return env


def run_python(resolved: ResolvedEnvironment, code: str) -> str:
    """Run ``code`` with the resolved interpreter as a target would, and return its stdout."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(resolved.variables)
    out = subprocess.run(
        [resolved.python, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()
