"""What another machine needs to build an environment exactly as this one would.

The SSH target's host and the Ray target's nodes build environments themselves, with the agent's
recipe (:mod:`ferry.agent.hostenv`), not the local one. The specification hash is computed
here from the remote Python version and platform reported by the remote side's ``hello``, and
from the agent recipe that will run (uv, or venv + pip): a built environment is reused by every
run that would build it the same way, and never mistaken for one built differently. The request
names the recipe, and the agent refuses to build with another.

Example::

    hello = {"python": [3, 11], "platform": "linux-x86_64", "uv": True}
    request, digest = remote_build_request(env, hello, interpreter="python3", uv="")
    request["recipe"]      # 'agent-uv-1'; the hash differs from a local build's
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ferry.envbuild import conda as conda_mod
from ferry.envbuild.spechash import (
    AGENT_RECIPE,
    AGENT_UV_RECIPE,
    AGENT_VENV_RECIPE,
    canonical_spec,
    spec_hash,
)
from ferry.spec import EnvironmentSpec


def conda_packages(env: EnvironmentSpec) -> list[str]:
    """The environment's conda packages, less those a pip-based build ignores (python, pip)."""
    return [p for p in env.conda if conda_mod.conda_name(p) not in conda_mod.IGNORED]


def agent_recipe(uv: str, hello: Mapping[str, Any]) -> str:
    """The agent recipe a build will use, from the ``uv`` setting and the hello's ``uv`` (whether
    the remote side finds uv by itself — SSH hosts and Ray nodes both say; absent: an older
    agent did not say, and it chooses)."""
    if uv == "none":
        return AGENT_VENV_RECIPE
    if uv:
        return AGENT_UV_RECIPE  # a path: the agent must build with it, or refuse
    found = hello.get("uv")
    if found is None:
        return AGENT_RECIPE
    return AGENT_UV_RECIPE if found else AGENT_VENV_RECIPE


def remote_build_request(
    env: EnvironmentSpec, hello: Mapping[str, Any], interpreter: str, uv: str
) -> tuple[dict[str, Any], str]:
    """The build request for a non-user-managed ``env`` on a remote side, and its spec hash."""
    version = ".".join(str(part) for part in list(hello["python"])[:2])
    recipe = agent_recipe(uv, hello)
    spec = canonical_spec(
        env, default_python=version, platform=str(hello["platform"]), recipe=recipe
    )
    from_conda = [r for r in (conda_mod.conda_to_pip(p) for p in conda_packages(env)) if r]
    digest = spec_hash(spec)
    request = {
        "hash": digest,
        "python": spec["python"] if env.python is not None else None,
        "interpreter": interpreter,
        "packages": [*env.pip, *from_conda],
        "options": list(spec["pipOptions"]),
        "uv": uv,
        "recipe": recipe,
    }
    return request, digest
