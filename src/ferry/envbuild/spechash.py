"""The identity of a built environment: a canonical spec and its hash (pure, no I/O).

Two specifications that build the same environment hash the same: the order, spelling, case and
comments of requirements do not count, nor does a Python version's patch level (``3.8.13`` and
``3.8`` both build from a 3.8 interpreter, see :mod:`.interpreters`); versions, the Python
version, package sources and the platform do. Environment variables, the name, the version and the Docker/Spark sections do not:
they are applied at run time or by other targets, and do not change what is installed.

So does the build *recipe* (``recipe`` in the spec): a venv made here by
``envbuild/builder.py`` and one made on an SSH host or Ray node by the agent
(``ferry/agent/hostenv.py``) differ in interpreter provenance and package sources, so they
never share a hash. Bump a recipe's number whenever it changes what it installs or how.

Example::

    spec = canonical_spec(deps, default_python="3.11", platform="linux-x86_64")
    spec_hash(spec)        # '5f0c…' (32 hex digits); spec["recipe"] == LOCAL_RECIPE
"""

from __future__ import annotations

import hashlib
import json
import platform as _platform
import re
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ferry.envbuild.conda import IGNORED, conda_name
from ferry.envbuild.defaults import effective_environment
from ferry.envbuild.requirements import canonical_name, canonical_option, canonical_requirement
from ferry.errors import ConfigError

if TYPE_CHECKING:
    from ferry.spec import EnvironmentSpec

#: bump when the canonical form changes incompatibly (a build change bumps its recipe instead).
SPEC_FORMAT = 1

#: Local builds (envbuild/builder.py): ``uv venv --relocatable --python-preference
#: only-system``, compileall, pip.conf translated for uv, conda when asked for.
LOCAL_RECIPE = "uv-local-1"
#: The agent's builds on SSH hosts and Ray nodes (ferry/agent/hostenv.py, which repeats
#: these names): ``uv venv`` + ``uv pip install`` with uv's own Python discovery ...
AGENT_UV_RECIPE = "agent-uv-1"
#: ... or ``python -m venv`` + pip, on a host without uv (or with ``uv="none"``) ...
AGENT_VENV_RECIPE = "agent-venv-1"
#: ... or whichever of the two the remote side picks, when it does not say whether it has uv.
AGENT_RECIPE = "agent-1"


def default_python() -> str:
    """The Python version used when a spec names none: the one running ferry (major.minor)."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def platform_tag() -> str:
    return f"{sys.platform}-{_platform.machine().lower()}"


def normalize_python(version: str | None, default: str) -> str:
    """``=3.11``, ``==3.11``, ``3.11.*``, ``3.11.7`` → ``3.11``; None → ``default``.

    A build uses an interpreter of the same major.minor version, whatever the patch level asked
    for, so the patch level is not part of the environment's identity.
    """
    if version is None or not str(version).strip():
        return default
    text = str(version).strip().lstrip("=").strip().removesuffix(".*")
    if not re.fullmatch(r"\d+(\.\d+){0,2}", text):
        raise ConfigError(f"python version {version!r} is not a version like '3.11' or '3.11.7'")
    return ".".join(text.split(".")[:2])


def _canonical_conda(spec: str) -> str:
    text = " ".join(spec.split())
    channel, sep, rest = text.rpartition("::")
    match = re.match(r"^([A-Za-z0-9_.+-]+)(.*)$", rest)
    if not match:
        return text
    name = canonical_name(match.group(1))
    return f"{channel}{sep}{name}{match.group(2).replace(' ', '')}"


def canonical_spec(
    env: EnvironmentSpec, *, default_python: str, platform: str, recipe: str = LOCAL_RECIPE
) -> dict[str, Any]:
    """The parts of ``env`` that decide what gets installed, and the ``recipe`` that installs
    them (see the module docstring), in one canonical form."""
    conda = sorted({_canonical_conda(p) for p in env.conda if conda_name(p) not in IGNORED})
    spec: dict[str, Any] = {
        "format": SPEC_FORMAT,
        "platform": platform,
        "python": normalize_python(env.python, default_python),
        "pip": sorted({canonical_requirement(p) for p in env.pip}),
        "pipOptions": list(dict.fromkeys(canonical_option(o) for o in env.pip_options)),
        "recipe": recipe,
    }
    if conda:
        spec["conda"] = conda
        spec["channels"] = list(dict.fromkeys(c.strip() for c in env.channels))
    return spec


def spec_hash(spec: Mapping[str, Any]) -> str:
    """32 hex digits of the SHA-256 of the canonical JSON of ``spec``."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def local_canonical(env: EnvironmentSpec) -> dict[str, Any] | None:
    """The canonical spec of an environment ferry builds here (:data:`LOCAL_RECIPE`); None when
    it is user-managed, or declares nothing to build (see :mod:`.defaults`)."""
    env = effective_environment(env)[0]
    if env.user_managed:
        return None
    return canonical_spec(env, default_python=default_python(), platform=platform_tag())


def environment_hash(env: EnvironmentSpec) -> str | None:
    """The hash of :func:`local_canonical`; None when the environment is user-managed."""
    spec = local_canonical(env)
    return None if spec is None else spec_hash(spec)
