"""What goes to a Ray node: the agent's code (by value), the snapshot's blobs, ferry's runtime,
and which environment the job runs in there.

The node agent (:mod:`.agent`, :mod:`.nodefiles`) and the neutral :mod:`ferry.agent` package it uses are imported
here as usual and registered with cloudpickle, so Ray sends their code by value to nodes that do
not have ferry. Blobs move only when a node's cache lacks them, in batches of at most
:data:`BATCH_BYTES` with a few batches in flight, so a source folder of any size goes through
the object store piece by piece (Ray Jobs caps ``working_dir`` at 100 MiB; ferry has no cap).
Nodes that share one cache (one machine, one node folder) are sent to once.

Example::

    register_node_code()                           # before the first actor is made
    send_blobs(agent, sizes, workspace.blobs, "sha256", tick)   # only what the node lacks
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ray

import ferry.agent
from ferry.envbuild import conda as conda_mod
from ferry.envbuild.remote import conda_packages, remote_build_request
from ferry.errors import TargetUnavailable
from ferry.spec import EnvironmentSpec
from ferry.targets.ray import agent as node_agent
from ferry.targets.ray import nodefiles

BATCH_BYTES = 16 << 20
IN_FLIGHT = 3


@functools.cache
def register_node_code() -> None:
    """Ray pickles the node agent and :mod:`ferry.agent` by value (nodes lack ferry)."""
    for module in (ferry.agent, node_agent, nodefiles):
        ray.cloudpickle.register_pickle_by_value(module)  # type: ignore[no-untyped-call]


# ------------------------------------------------------------------------------------------------
# blobs and the runtime


def send_blobs(
    agent: Any, sizes: Mapping[str, int], blobs: Any, algo: str, tick: Callable[[], None]
) -> int:
    """Send the blobs of ``sizes`` (digest → size) that the node lacks; returns bytes sent."""
    missing = wait_for(agent.missing.remote(sorted(sizes)), tick)
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
                        raise ValueError(f"blob {digest} is shorter than its manifest says")
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
    """``ray.get`` that keeps calling ``tick`` (cancel checks) while it waits."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        ready, _ = ray.wait([ref], timeout=0.5)
        if ready:
            return ray.get(ref)
        tick()
        if deadline is not None and time.monotonic() > deadline:
            raise TargetUnavailable(f"a Ray node did not answer within {timeout:.0f} s")


# ------------------------------------------------------------------------------------------------
# the environment on a node (pure)


def environment_refusal(env: EnvironmentSpec) -> str | None:
    """Why nodes cannot provide ``env`` (Docker; conda-only packages: nodes use uv or pip)."""
    if env.docker.enabled:
        return (
            f"environment {env.name!r} asks for Docker ({env.docker.base_image or 'a Dockerfile'}); "
            "the ray target runs without containers: run it on the local or an ssh target, or "
            "set env.docker.enabled = False"
        )
    if env.user_managed:
        return None
    only = conda_mod.conda_only(conda_packages(env))
    if only:
        return (
            f"environment {env.name!r} needs conda-only packages ({', '.join(only)}); the ray "
            "target installs with uv or pip: use pip packages, or a user-managed environment"
        )
    return None


def environment_request(
    env: EnvironmentSpec, hello: Mapping[str, Any], uv: str
) -> tuple[dict[str, Any], str | None]:
    """What the node agent's ``start_env`` needs, and the environment's hash when built.

    The interpreter is the one the environment names, else the node's own (the Python Ray runs
    there); a user-managed environment runs with it, a built one is made from it.
    """
    interpreter = env.interpreter or str(hello["executable"])
    if env.user_managed:
        return {"python": interpreter}, None
    build, digest = remote_build_request(env, hello, interpreter, uv)
    return {"build": build}, digest
