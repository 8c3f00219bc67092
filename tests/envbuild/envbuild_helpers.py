"""Helpers for the environment build tests: small environments and a script runner."""

from __future__ import annotations

import os
import subprocess

from ferry.envbuild import ResolvedEnvironment
from ferry.environment import CondaDependencies, Environment


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
