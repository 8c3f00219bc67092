"""Turn an environment specification into something a target can run: an interpreter and
variables.

:class:`~ferry.spec.EnvironmentSpec` → canonical spec and hash (:mod:`.spechash`, pure) → cached, atomically published
virtual environment built with uv (:mod:`.builder`, :mod:`.cache`) → :class:`ResolvedEnvironment`
(:mod:`.resolver`). User-managed environments resolve to their interpreter, and so do built ones
that declare nothing beyond the reference's defaults (:func:`effective_environment`, which every
target applies first), so targets never care which kind they run.

Example::

    from ferry.envbuild import resolve
    resolved = resolve(env.to_spec(), ws.envs_dir, log=print)   # builds once, then < 1 ms
"""

from __future__ import annotations

from ferry.envbuild.cache import BuiltEnvironment, EnvCache
from ferry.envbuild.defaults import effective_environment
from ferry.envbuild.interpreters import Interpreter, find_interpreter, find_python
from ferry.envbuild.resolver import ResolvedEnvironment, describe, resolve
from ferry.envbuild.spechash import environment_hash, local_canonical, spec_hash

__all__ = [
    "BuiltEnvironment",
    "EnvCache",
    "Interpreter",
    "ResolvedEnvironment",
    "describe",
    "effective_environment",
    "environment_hash",
    "find_interpreter",
    "find_python",
    "local_canonical",
    "resolve",
    "spec_hash",
]
