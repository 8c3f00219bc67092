"""Reaching a Ray cluster as a driver, and what its nodes hold.

``ray.init`` waits for ever on an address where nothing listens; :func:`connect` first checks
that the port answers, so a stopped cluster is a clear :class:`~ferry.errors.TargetUnavailable`
in seconds.

Example::

    connect(RaySettings(address="127.0.0.1:6379"))
    [n.address for n in nodes() if n.alive]
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray

from ferry.errors import TargetError, TargetUnavailable
from ferry.targets.ray.cluster import RaySettings, format_resources

log = logging.getLogger(__name__)
#: Ray Client tries at least this many times to start a session, however long each try took
_CLIENT_ATTEMPTS = 3
_CLIENT_RETRY_PAUSE = 1.0  # seconds between two tries


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    address: str
    alive: bool
    total: dict[str, float]
    free: dict[str, float]


def _check_port(address: str, timeout: float) -> None:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise TargetUnavailable(
            f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}; is it running "
            "(`ray start --head`) and is the address right (ferry target show NAME)?"
        ) from None


def connect(settings: RaySettings, tick: Callable[[], None] | None = None) -> None:
    """Make this process a driver of the cluster (once; later calls do nothing).

    ``ray.init`` runs in a helper thread so that ``tick`` (heartbeats, cancel checks) goes on,
    and a head that answers but never lets the driver in (it advertises addresses this machine
    cannot reach) is an error after ``6 × connect_timeout`` instead of a wait for ever.
    """
    if ray.is_initialized():
        return
    if settings.address != "auto":
        _check_port(settings.address, settings.connect_timeout)
    kwargs: dict[str, Any] = {
        "namespace": settings.namespace,
        "logging_level": logging.WARNING,
        "log_to_driver": False,
    }
    failure: list[BaseException] = []
    attempt_started = [time.monotonic()]  # the helper thread's current ray.init began here
    retry_until = attempt_started[0] + 3 * settings.connect_timeout

    def init() -> None:
        attempts = 0
        while True:
            attempts += 1
            attempt_started[0] = time.monotonic()
            try:
                ray.init(address=settings.address, **kwargs)
                return
            except ConnectionError as exc:
                # Ray Client's proxy starts a server per driver; on a loaded head that start
                # can fail ("Initialization failure from server"), and one try may take the
                # proxy's own 30 s: try again for a while, and at least _CLIENT_ATTEMPTS times
                client = settings.address.startswith("ray://")
                if client and (time.monotonic() < retry_until or attempts < _CLIENT_ATTEMPTS):
                    log.info("Ray Client could not start a session (%s); trying again", exc)
                    attempt_started[0] = time.monotonic()  # the pause belongs to the next try
                    time.sleep(_CLIENT_RETRY_PAUSE)
                    continue
                failure.append(exc)
                return
            except BaseException as exc:  # handed to the waiting thread
                failure.append(exc)
                return

    thread = threading.Thread(target=init, name="ferry-ray-connect", daemon=True)
    thread.start()
    limit = 6 * settings.connect_timeout
    while thread.is_alive():
        thread.join(0.25)
        if tick is not None:
            tick()
        if thread.is_alive() and time.monotonic() - attempt_started[0] > limit:
            raise TargetUnavailable(
                f"the Ray cluster at {settings.address} answers but did not let this driver in "
                f"within {limit:.0f} s; check that this machine reaches the addresses the "
                "cluster advertises (`ray status` on the head), or use a ray://host:port "
                "address (Ray Client)"
            )
    if not failure:
        return
    exc = failure[0]
    if isinstance(exc, ConnectionError):
        raise TargetUnavailable(
            f"cannot connect to the Ray cluster at {settings.address}: {exc}; start one with "
            "`ray start --head` or attach the target with its address"
        ) from None
    if isinstance(exc, RuntimeError | ValueError):
        raise TargetUnavailable(
            f"cannot connect to the Ray cluster at {settings.address}: {exc}"
        ) from exc
    raise exc


def disconnect() -> None:
    try:
        ray.shutdown()
    except Exception:  # shutting down is best effort
        logging.getLogger("ferry.ray").debug("ray.shutdown failed", exc_info=True)


def nodes() -> list[NodeInfo]:
    """Every node the cluster knows, with its total and (where Ray tells) free resources."""
    free_by_id: dict[str, dict[str, float]] = {}
    try:
        from ray._private import state

        free_by_id = {k: dict(v) for k, v in state.available_resources_per_node().items()}  # type: ignore[no-untyped-call]
    except Exception:  # Ray Client and older Rays do not have it
        free_by_id = {}
    out = []
    for node in ray.nodes():  # type: ignore[no-untyped-call]
        node_id = str(node.get("NodeID", ""))
        total = {str(k): float(v) for k, v in (node.get("Resources") or {}).items()}
        alive = bool(node.get("Alive"))
        out.append(
            NodeInfo(
                node_id=node_id,
                address=str(node.get("NodeManagerAddress", "")),
                alive=alive,
                total=total,
                free=free_by_id.get(node_id, total if alive else {}),
            )
        )
    return out


def cluster_status(name: str, settings: RaySettings) -> dict[str, Any]:
    """What ``ferry target status NAME`` shows: reachability, nodes and free resources."""
    base: dict[str, Any] = {"name": name, "kind": "ray", "address": settings.address}
    started = time.monotonic()
    try:
        connect(settings)
        found = [n for n in nodes() if n.alive]
        total = {str(k): float(v) for k, v in ray.cluster_resources().items()}  # type: ignore[no-untyped-call]
        free = {str(k): float(v) for k, v in ray.available_resources().items()}  # type: ignore[no-untyped-call]
    except TargetError as exc:
        return {**base, "reachable": False, "error": str(exc)}
    finally:
        disconnect()
    return {
        **base,
        "reachable": True,
        "ray_version": ray.__version__,
        "connect_seconds": round(time.monotonic() - started, 2),
        "nodes": [
            f"{n.address} ({n.node_id[:8]}): free {format_resources(n.free) or 'nothing'} "
            f"of {format_resources(n.total)}"
            for n in found
        ],
        "total": format_resources(total),
        "free": format_resources(free),
        "per_process": format_resources(settings.process_resources()),
    }
