"""What goes to a Ray node: the agent's code (by value), the snapshot's blobs, ferry's runtime,
and which environment the job runs in there.

Blobs move only when a node's cache lacks them, in batches of at most :data:`BATCH_BYTES` with a
few batches in flight, so a source folder of any size goes through the object store piece by
piece (Ray Jobs caps ``working_dir`` at 100 MiB; ferry has no cap). Nodes that share one cache
(one machine, one node folder) are sent to once.

Example::

    kit = node_kit()                               # Store, build_env, RankGroup, RankLaunch
    send_blobs(agent, manifest, workspace.blobs)   # only what the node lacks
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import ray

from ferry.envbuild import conda as conda_mod
from ferry.envbuild.remote import conda_packages, remote_build_request
from ferry.environment import Environment
from ferry.errors import EnvironmentBuildError, TargetError

BATCH_BYTES = 16 << 20
IN_FLIGHT = 3
#: the remote agent's stdlib modules (content-addressed store, environment builds), reused
_REMOTE_AGENT = Path(__file__).resolve().parent.parent / "ssh" / "agent"
_DEFAULT_INTERPRETERS = ("", "python", "python3")


def _load(name: str, path: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"ferry is incomplete: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@functools.cache
def node_kit() -> dict[str, Any]:
    """The code the node agent uses, registered so Ray ships it by value (nodes lack ferry)."""
    from ferry.targets import distributed
    from ferry.targets.ray import agent

    store = _load("_ferry_node_store", _REMOTE_AGENT / "store.py")
    envs = _load("_ferry_node_envs", _REMOTE_AGENT / "envs.py")
    for module in (store, envs, distributed, agent):
        ray.cloudpickle.register_pickle_by_value(module)  # type: ignore[no-untyped-call]
    return {
        "Store": store.Store,
        "build_env": envs.build_env,
        "RankGroup": distributed.RankGroup,
        "RankLaunch": distributed.RankLaunch,
    }


# ------------------------------------------------------------------------------------------------
# blobs and the runtime


def send_blobs(
    agent: Any, sizes: Mapping[str, int], blobs: Any, algo: str, tick: Callable[[], None]
) -> int:
    """Send the blobs of ``sizes`` (digest → size) that the node lacks; returns bytes sent."""
    missing = ray.get(agent.missing.remote(sorted(sizes)))
    if not missing:
        return 0
    pending: list[Any] = []
    batch: list[tuple[str, bytes]] = []
    batch_bytes = sent = 0

    def push(ref: Any) -> None:
        pending.append(ref)
        while len(pending) >= IN_FLIGHT:
            wait_for(pending.pop(0), tick)

    for digest in missing:
        path = blobs.path(digest)
        size = sizes[digest]
        if size > BATCH_BYTES:
            with open(path, "rb") as fh:
                offset = 0
                while offset < size:
                    data = fh.read(BATCH_BYTES)
                    if not data:
                        raise TargetError(f"blob {digest} is shorter than its manifest says")
                    push(agent.put_blob_part.remote(digest, data, offset, size, algo))
                    offset += len(data)
            sent += size
            continue
        batch.append((digest, Path(path).read_bytes()))
        batch_bytes += size
        sent += size
        if batch_bytes >= BATCH_BYTES:
            push(agent.put_blobs.remote(batch, algo))
            batch, batch_bytes = [], 0
    if batch:
        push(agent.put_blobs.remote(batch, algo))
    for ref in pending:
        wait_for(ref, tick)
    return sent


def runtime_files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def wait_for(ref: Any, tick: Callable[[], None], timeout: float | None = None) -> Any:
    """``ray.get`` that keeps calling ``tick`` (heartbeats, cancel checks) while it waits."""
    import time

    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        ready, _ = ray.wait([ref], timeout=0.5)
        if ready:
            return ray.get(ref)
        tick()
        if deadline is not None and time.monotonic() > deadline:
            raise TargetError(f"a Ray node did not answer within {timeout:.0f} s")


# ------------------------------------------------------------------------------------------------
# the environment on a node (pure)


def check_environment(env: Environment) -> None:
    """Refuse what nodes cannot build: Docker, and conda-only packages (nodes use uv or pip)."""
    if env.docker.enabled:
        raise EnvironmentBuildError(
            f"environment {env.name!r} asks for Docker; the ray target runs without Docker "
            "(set env.docker.enabled = False, or use Ray's own container support outside ferry)"
        )
    if env.python.user_managed_dependencies:
        return
    only = conda_mod.conda_only(conda_packages(env.to_spec()))
    if only:
        raise EnvironmentBuildError(
            f"environment {env.name!r} needs conda-only packages ({', '.join(only)}); the ray "
            "target installs with uv or pip: use pip packages, or a user-managed environment"
        )


def environment_request(
    env: Environment, hello: Mapping[str, Any], uv: str
) -> tuple[dict[str, Any], str | None]:
    """What the node agent's ``start_env`` needs, and the environment's hash when built.

    User-managed environments run with their interpreter; ferry's default environment (whose
    interpreter path is the submitting machine's) runs with the node's Ray Python.
    """
    check_environment(env)
    path = env.python.interpreter_path or ""
    default = path in _DEFAULT_INTERPRETERS or path == sys.executable
    interpreter = str(hello["executable"]) if default else path
    if env.python.user_managed_dependencies:
        return {"python": interpreter}, None
    build, digest = remote_build_request(env.to_spec(), hello, interpreter, uv)
    return {"build": build}, digest
