"""What another machine needs to build an environment exactly as this one would.

The SSH target's host and the Ray target's nodes build environments themselves; both ask for a
build with the same specification hash ferry computes here (from the remote Python version and
platform reported by the remote side's ``hello``), so a built environment is reused everywhere.

Example::

    request, digest = remote_build_request(env, {"python": [3, 11], "platform": "linux-x86_64"},
                                           interpreter="python3", uv="")
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ferry.envbuild import conda as conda_mod
from ferry.envbuild.spechash import canonical_spec, spec_hash
from ferry.environment import Environment


def conda_packages(env: Environment) -> list[str]:
    """The environment's conda packages, less those a pip-based build ignores (python, pip)."""
    deps = env.python.conda_dependencies
    return [p for p in deps.conda_packages if conda_mod.conda_name(p) not in conda_mod.IGNORED]


def remote_build_request(
    env: Environment, hello: Mapping[str, Any], interpreter: str, uv: str
) -> tuple[dict[str, Any], str]:
    """The build request for a non-user-managed ``env`` on a remote side, and its spec hash."""
    deps = env.python.conda_dependencies
    version = ".".join(str(part) for part in list(hello["python"])[:2])
    spec = canonical_spec(deps, default_python=version, platform=str(hello["platform"]))
    from_conda = [r for r in (conda_mod.conda_to_pip(p) for p in conda_packages(env)) if r]
    digest = spec_hash(spec)
    request = {
        "hash": digest,
        "python": spec["python"] if deps.python_version is not None else None,
        "interpreter": interpreter,
        "packages": [*deps.pip_packages, *from_conda],
        "options": list(spec["pipOptions"]),
        "uv": uv,
    }
    return request, digest
