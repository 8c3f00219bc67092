"""Resolve an environment spec for a run on this machine: an interpreter, variables, lock, hash.

User-managed environments resolve to their interpreter, and so do built ones that declare nothing
beyond the reference's defaults (see :mod:`ferry.envbuild.defaults`). Built ones resolve to a cached environment
found by the hash of their specification (two stat calls, a touch and a small read: well under a
millisecond), built first when it is missing (see :mod:`ferry.envbuild.builder`).

Example::

    resolved = resolve(env.to_spec(), ws.envs_dir, log=print)
    subprocess.run([resolved.python, "train.py"], env={**os.environ, **resolved.variables})
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry.envbuild.cache import LOCK_TEXT, EnvCache
from ferry.envbuild.defaults import effective_environment
from ferry.envbuild.interpreters import find_interpreter
from ferry.envbuild.spechash import environment_hash, local_canonical, spec_hash
from ferry.errors import EnvironmentBuildError

if TYPE_CHECKING:
    from ferry.spec import EnvironmentSpec


@dataclass(frozen=True)
class ResolvedEnvironment:
    """An environment ready to run: the interpreter, extra variables and the resolved lock.

    ``built`` is True when this resolve built the environment (the run paid for the build).
    """

    python: str
    variables: dict[str, str] = field(default_factory=dict)
    lock: str | None = None
    spec_hash: str | None = None
    built: bool = False


def _ignore(_: str) -> None:
    return None


def default_interpreter() -> str:
    """The interpreter a run uses here when its environment names none: the one running ferry
    (the target's default; an SSH host or a Ray node has its own)."""
    return sys.executable


def resolve(
    env: EnvironmentSpec, envs_root: Path, log: Callable[[str], None] | None = None
) -> ResolvedEnvironment:
    """Resolve ``env`` for a run on this machine (building it first when needed)."""
    say = log or _ignore
    env, notes = effective_environment(env)
    for note in notes:
        say(note)
    if env.docker.enabled:
        raise EnvironmentBuildError(
            f"environment {env.name!r} asks for Docker (env.docker.enabled = True); the local "
            "target runs without Docker; set env.docker.enabled = False"
        )
    if env.user_managed:
        return ResolvedEnvironment(
            python=find_interpreter(env.interpreter) if env.interpreter else default_interpreter(),
            variables=dict(env.variables),
        )
    spec = local_canonical(env)
    assert spec is not None
    digest = spec_hash(spec)
    cache = EnvCache(Path(envs_root))
    folder = cache.lookup(digest)
    built = False
    if folder is None:
        from ferry.envbuild.builder import build, plan_build

        folder, built = build(plan_build(env, spec, digest), cache, say)
    else:
        say(f"environment {env.name!r}: reusing {digest[:12]}")
    cache.touch(digest)
    try:
        lock = (folder / LOCK_TEXT).read_text(encoding="utf-8")
    except OSError:
        lock = None
    bin_dir = folder / "bin"
    variables = {
        "VIRTUAL_ENV": str(folder),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        **env.variables,
    }
    return ResolvedEnvironment(
        python=str(bin_dir / "python"),
        variables=variables,
        lock=lock,
        spec_hash=digest,
        built=built,
    )


def describe(env: EnvironmentSpec, envs_root: Path) -> dict[str, Any]:
    """What ``env`` is on this machine, without building it: the interpreter a run gets, or the
    built environment (hash, folder, Python, locked packages) — ``Environment.get_image_details``.
    """
    from ferry.envbuild.interpreters import probe_version

    effective, notes = effective_environment(env)
    out: dict[str, Any] = {
        "name": env.name,
        "version": env.version,
        "userManaged": env.user_managed,
        "notes": list(notes),
        "dockerImage": None,  # ferry's environments are folders, not images
    }
    if effective.user_managed:
        python = find_interpreter(effective.interpreter) if effective.interpreter else None
        version = probe_version(python) if python else tuple(sys.version_info[:3])
        return {
            **out,
            "kind": "interpreter",  # nothing to build: the job runs with this Python
            "hash": None,
            "ready": True,
            "imageExistsInRegistry": True,
            "path": None,
            "python": {
                "path": python or default_interpreter(),
                "version": ".".join(map(str, version)) if version else None,
                "targetDefault": python is None,  # another target uses its own interpreter
            },
            "packages": None,
        }
    digest = environment_hash(env)
    built = EnvCache(Path(envs_root)).read(digest or "")
    meta = built.meta if built else {}
    return {
        **out,
        "kind": "built",
        "hash": digest,
        "ready": built is not None,  # False: the first run (or build_local) builds it
        "imageExistsInRegistry": built is not None,
        "path": str(built.path) if built else None,
        "python": {
            "path": str(built.python) if built else None,
            "version": (meta.get("python") or {}).get("version"),
            "requested": effective.python,
        },
        "packages": [line for line in built.lock.splitlines() if line and not line.startswith("#")]
        if built
        else [*effective.pip, *effective.conda],
        "builtAt": meta.get("builtAt"),
        "buildSeconds": meta.get("buildSeconds"),
    }
