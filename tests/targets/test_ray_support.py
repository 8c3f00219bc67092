"""A Ray test cluster on this machine (loopback only), shared by the ray test modules.

The cluster runs in a helper process (``ray.cluster_utils.Cluster``: a head and more nodes, each
with its own raylet and resources), so the test process itself never becomes a Ray driver and
the supervisors it starts are plain forks. ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` keeps every Ray
address on 127.0.0.1 (Ray otherwise picks the machine's outward address). Object stores are
small (200 MB) for a 2-core, 24 GiB machine.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
STORE_BYTES = 200 * 1000 * 1000

_HELPER = textwrap.dedent(
    """
    import json, sys
    try:
        from ray.cluster_utils import Cluster
    except ImportError:
        print(json.dumps({"error": "ray is not installed"}), flush=True)
        sys.exit(1)
    spec = json.loads(sys.argv[1])
    nodes = spec["nodes"]
    # the head's agent port would default to 52365: free ports let clusters run side by side
    head = {"include_dashboard": False, "dashboard_agent_listen_port": spec["agent_port"]}
    cluster = Cluster(initialize_head=True, head_node_args={**nodes[0], **head})
    for node in nodes[1:]:
        cluster.add_node(**node)
    cluster.wait_for_nodes()
    print(json.dumps({"address": cluster.address}), flush=True)
    sys.stdin.read()   # until the test process closes it (or dies)
    cluster.shutdown()
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RayTestCluster:
    address: str
    proc: subprocess.Popen[str]
    client_address: str = ""  # ray://127.0.0.1:PORT when started with a Ray Client server

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_cluster(nodes: list[dict[str, Any]], client_server: bool = False) -> RayTestCluster:
    """Start a head (``nodes[0]``) and worker nodes; fails with how to install Ray if missing."""
    nodes = [{"object_store_memory": STORE_BYTES, **node} for node in nodes]
    client_port = _free_port() if client_server else 0
    if client_server:
        nodes[0]["ray_client_server_port"] = client_port
    proc = subprocess.Popen(
        [sys.executable, "-c", _HELPER, json.dumps({"nodes": nodes, "agent_port": _free_port()})],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **LOOPBACK_ENV},
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    try:
        info = json.loads(line)
    except ValueError:
        proc.kill()
        pytest.fail(f"the Ray test cluster did not start (exit {proc.wait()}): {line!r}")
    if "error" in info:
        proc.wait()
        pytest.fail(
            "the ray tests need Ray: install it with `make install` or "
            "`pip install 'ferry[ray]'` (" + info["error"] + ")"
        )
    client = f"ray://127.0.0.1:{client_port}" if client_server else ""
    return RayTestCluster(info["address"], proc, client)


@pytest.fixture(scope="module")
def loopback_ray() -> Iterator[None]:
    """Ray addresses on 127.0.0.1 in this process and the supervisors it forks."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in LOOPBACK_ENV.items():
            mp.setenv(key, value)
        constants = sys.modules.get("ray._private.ray_constants")
        if constants is not None:  # Ray read the variable when it was imported
            mp.setattr(constants, "ENABLE_RAY_CLUSTER", False)
        yield


@pytest.fixture(autouse=True)
def ray_heartbeats(monkeypatch: pytest.MonkeyPatch, _isolated: None) -> None:
    """Heartbeats every second, not 0.3 s: connecting to Ray holds the GIL for about a second
    (Ray's core worker starts under it), which can delay one beat of the supervisor's thread."""
    monkeypatch.setenv("FERRY_HEARTBEAT_SECONDS", "1")
