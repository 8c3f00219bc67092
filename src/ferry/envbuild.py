"""Turn an Environment into something a target can run: an interpreter and variables.

User-managed environments resolve to their interpreter. Built environments (uv, cached by the hash
of their specification) resolve through :func:`resolve` as well, so targets never care which.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ferry.environment import Environment
from ferry.errors import ConfigError, EnvironmentBuildError


@dataclass(frozen=True)
class ResolvedEnvironment:
    """An environment ready to run: the interpreter, extra variables and the resolved lock."""

    python: str
    variables: dict[str, str] = field(default_factory=dict)
    lock: str | None = None
    spec_hash: str | None = None


def find_interpreter(path: str) -> str:
    """The absolute path of an interpreter given as a path or a command name."""
    found = path if os.sep in path else shutil.which(path)
    if not found or not Path(found).is_file() or not os.access(found, os.X_OK):
        raise ConfigError(
            f"the interpreter {path!r} was not found or is not executable; set "
            "environment.python.interpreter_path to an existing Python (e.g. the output of "
            "`which python3`)"
        )
    return str(found)


def resolve(
    env: Environment, envs_root: Path, log: Callable[[str], None] | None = None
) -> ResolvedEnvironment:
    """Resolve ``env`` for a run on this machine (building it first when needed)."""
    if env.python.user_managed_dependencies:
        return ResolvedEnvironment(
            python=find_interpreter(env.python.interpreter_path),
            variables=dict(env.environment_variables),
        )
    raise EnvironmentBuildError(
        f"environment {env.name!r} asks ferry to build its packages, which this ferry cannot do "
        "yet; set environment.python.user_managed_dependencies = True to run it with an "
        "existing interpreter"
    )
