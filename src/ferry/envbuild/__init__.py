"""Turn an Environment into something a target can run: an interpreter and variables.

Environment spec → canonical spec and hash (:mod:`.spechash`, pure) → cached, atomically published
virtual environment built with uv (:mod:`.builder`, :mod:`.cache`) → :class:`ResolvedEnvironment`
(:mod:`.resolver`). User-managed environments resolve to their interpreter, so targets never care
which kind they run.

Example::

    from ferry.envbuild import resolve
    resolved = resolve(env, ws.envs_dir, log=print)     # builds once, then reuses in < 1 ms
"""

from __future__ import annotations

from ferry.envbuild.cache import BuiltEnvironment, EnvCache
from ferry.envbuild.interpreters import Interpreter, find_interpreter, find_python
from ferry.envbuild.resolver import ResolvedEnvironment, resolve
from ferry.envbuild.spechash import environment_hash, environment_spec, spec_hash

__all__ = [
    "BuiltEnvironment",
    "EnvCache",
    "Interpreter",
    "ResolvedEnvironment",
    "environment_hash",
    "environment_spec",
    "find_interpreter",
    "find_python",
    "resolve",
    "spec_hash",
]
