"""A managed Ray cluster's life on this machine: its head started, found, listed and stopped.

The head is ``ray start --head --block --autoscaling-config=<cluster file>`` in a session of its
own: every process of the cluster (GCS, raylet, Ray's autoscaler and, on this machine, the nodes
the autoscaler starts) is in that process group, so :func:`stop` ends exactly this cluster —
never ``ray stop``, which would end every Ray cluster of the machine. Its ports are free ones
and its temporary folder its own, so it neither collides with nor replaces another cluster
(``ray.init("auto")`` keeps finding what it found before).

The cluster's folder in the workspace (``clusters/<name>/``) holds the cluster file Ray reads,
the head's log and ``state.json`` (process group, address, temporary folder). Nodes and the
autoscaler's view are read from the GCS without becoming a Ray driver (:func:`node_report`).

Example::

    state = start(folder, plan)          # the head is up, Ray's autoscaler runs in it
    node_report(state.address).workers   # [] until a run asks for a node
    stop(state)
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from ferry.errors import TargetError, TargetUnavailable
from ferry.targets.ray.autoscale import ClusterPlan, ManagedSettings, Pool, cluster_file

#: how often Ray's autoscaler looks at the demand (Ray's default is 5 s)
UPDATE_INTERVAL_S = "1"
STORE_BYTES = 200 * 1000 * 1000
CLUSTERS_DIR = "clusters"
STATE_FILE = "state.json"
CLUSTER_FILE = "cluster.yaml"
HEAD_LOG = "head.log"


@dataclass(frozen=True)
class ClusterState:
    """Where a started cluster is: its process group, GCS address and temporary folder."""

    pgid: int
    address: str
    temp_dir: str
    cluster_file: str
    started: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def read_state(folder: Path) -> ClusterState | None:
    try:
        data = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        return ClusterState(**data)
    except (OSError, ValueError, TypeError):
        return None


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def is_running(state: ClusterState) -> bool:
    """Whether the cluster's head is alive: a process of its group runs its cluster file
    (a reused process-group id of another program is not taken for it)."""
    for pid in _group_members(state.pgid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if state.cluster_file.encode() in fh.read():
                    return True
        except OSError:
            continue
    return False


def head_ip() -> str:
    """This machine's address as Ray itself picks it for a node (the pool's hosts reach the
    head there)."""
    from ray._private.services import get_node_ip_address

    return str(get_node_ip_address())  # type: ignore[no-untyped-call]


def temp_dir_for(folder: Path) -> str:
    """A short private temporary folder (Ray's socket paths must stay under ~100 bytes)."""
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]
    return os.path.join(tempfile.gettempdir(), f"ferry-ray-{digest}")


def start(folder: Path, plan: ClusterPlan, timeout: float = 90.0) -> ClusterState:
    """Write the cluster file and start the head with Ray's autoscaler; returns once the GCS
    answers. The head's log is ``head.log`` beside the cluster file."""
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / CLUSTER_FILE
    config_path.write_text(json.dumps(cluster_file(plan), indent=2), encoding="utf-8")
    temp_dir = temp_dir_for(folder)
    os.makedirs(temp_dir, mode=0o700, exist_ok=True)
    address_file = Path(temp_dir) / "ray_current_cluster"
    address_file.unlink(missing_ok=True)
    argv = [
        sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
        f"--port={plan.gcs_port}", "--num-cpus=0", "--num-gpus=0",
        f"--autoscaling-config={config_path}", "--include-dashboard=false",
        f"--dashboard-port={free_port()}", f"--ray-client-server-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}", f"--temp-dir={temp_dir}",
        f"--object-store-memory={STORE_BYTES}", "--disable-usage-stats",
    ]  # fmt: skip
    if plan.head_ip:
        argv.append(f"--node-ip-address={plan.head_ip}")
    env = {
        **os.environ,
        "AUTOSCALER_UPDATE_INTERVAL_S": UPDATE_INTERVAL_S,
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    if plan.pool is None:
        env["RAY_FAKE_CLUSTER"] = "1"  # Ray's fake_multinode provider asks for it
    with open(folder / HEAD_LOG, "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=folder,
            start_new_session=True,  # the cluster's own process group: stop() ends it all
        )
    state = ClusterState(
        pgid=proc.pid,
        address="",
        temp_dir=temp_dir,
        cluster_file=str(config_path),
        started=time.time(),
    )
    deadline = time.monotonic() + timeout
    while not address_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(state, grace=2.0)
            raise TargetError(
                f"the cluster's Ray head did not start (exit {proc.poll()}); its log "
                f"{folder / HEAD_LOG} ends with:\n{log_tail(folder)}"
            )
        time.sleep(0.2)
    address = address_file.read_text(encoding="utf-8").strip()
    state = ClusterState(**{**state.to_dict(), "address": address})
    from ferry.agent.files import write_json

    write_json(str(folder / STATE_FILE), state.to_dict())
    return state


def log_tail(folder: Path, size: int = 3000) -> str:
    try:
        return (folder / HEAD_LOG).read_text(encoding="utf-8", errors="replace")[-size:]
    except OSError:
        return ""


def stop(state: ClusterState, grace: float = 5.0) -> None:
    """End every process of the cluster: TERM, then KILL after ``grace`` seconds."""
    if not is_running(state):
        return  # already stopped (or the group id now belongs to another program)
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(state.pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while _group_members(state.pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not _group_members(state.pgid):
            return


def cluster_folder(workspace_path: Path, name: str) -> Path:
    return workspace_path / CLUSTERS_DIR / name


def ensure_running(
    workspace_path: Path,
    name: str,
    settings: ManagedSettings,
    log: Callable[[str], None] | None = None,
) -> ClusterState:
    """The cluster's head, started now if it is not running (one starter at a time)."""
    folder = cluster_folder(workspace_path, name)
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / "start.lock"), timeout=120):
        state = read_state(folder)
        if state is not None and is_running(state):
            return state
        if log is not None:
            log(f"ferry: starting the Ray head of cluster {name!r} (Ray's autoscaler runs there)")
        head = head_ip() if settings.pool else ""
        if settings.pool is not None:
            forget_pool_state(settings.cluster_name)
        return start(folder, settings.plan(free_port(), head))


def stop_cluster(workspace_path: Path, name: str, settings: ManagedSettings | None = None) -> bool:
    """Stop the cluster's head and every node of it (on the pool's hosts too); True if it ran."""
    folder = cluster_folder(workspace_path, name)
    with FileLock(str(folder / "start.lock"), timeout=120):
        state = read_state(folder)
        if state is None:
            return False
        running = is_running(state)
        stop(state)
        if settings is not None and settings.pool is not None:
            stop_pool_nodes(state.temp_dir, settings.pool)
            forget_pool_state(settings.cluster_name)
        return running


def stop_pool_nodes(temp_dir: str, pool: Pool, timeout: float = 30.0) -> list[str]:
    """End this cluster's Ray processes on each host of the pool — those of its own session
    folder, never another cluster's (``ray stop`` would end them all). Returns the hosts that
    could not be reached (their processes end when they lose the head)."""
    # "[s]ession_": the pattern does not match the command line of the shell that runs it
    pattern = shlex.quote(f"{temp_dir}/[s]ession_")
    script = (
        f'pids=$(pgrep -f -- {pattern}); [ -z "$pids" ] || kill $pids; sleep 1; '
        f'pids=$(pgrep -f -- {pattern}); [ -z "$pids" ] || kill -9 $pids; true'
    )
    unreached = []
    for host in pool.hosts:
        argv = ["ssh", *pool_ssh_options(pool), f"{pool.username}@{host}", script]
        try:
            done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired):
            unreached.append(host)
            continue
        if done.returncode != 0:
            unreached.append(host)
    return unreached


def pool_ssh_options(pool: Pool) -> list[str]:
    """The ssh options Ray's own node updater uses for a pool's hosts."""
    options = ["-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={os.devnull}",
               "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]  # fmt: skip
    if pool.private_key_file:
        options = ["-i", os.path.expanduser(pool.private_key_file), "-o", "IdentitiesOnly=yes",
                   *options]  # fmt: skip
    return options


def forget_pool_state(cluster_name: str) -> None:
    """Remove Ray's local-provider record of which hosts run nodes (a new start has none)."""
    from ray._common.utils import get_default_ray_temp_dir

    for suffix in ("state", "lock"):
        folder = str(get_default_ray_temp_dir())  # type: ignore[no-untyped-call]
        Path(folder, f"cluster-{cluster_name}.{suffix}").unlink(missing_ok=True)


def rewrite_cluster_file(workspace_path: Path, name: str, settings: ManagedSettings) -> bool:
    """New scale settings for a running cluster: Ray's autoscaler reads its cluster file again
    at every update, so the new minimum, maximum and idle time hold within seconds. False when
    the cluster is not running (its next start reads them)."""
    folder = cluster_folder(workspace_path, name)
    state = read_state(folder)
    if state is None or not is_running(state):
        return False
    host, _, port = state.address.rpartition(":")
    plan = settings.plan(int(port), host if settings.pool else "")
    from ferry.agent.files import write_atomic

    write_atomic(state.cluster_file, json.dumps(cluster_file(plan), indent=2).encode("utf-8"))
    return True


# what the cluster holds ------------------------------------------------------------------------
@dataclass(frozen=True)
class NodeReport:
    """One worker node as the GCS and the autoscaler see it."""

    node_id: str
    address: str
    port: int
    total: dict[str, float]
    used: dict[str, float]

    @property
    def busy(self) -> bool:
        return any(v > 1e-9 for k, v in self.used.items() if k in ("CPU", "GPU"))


@dataclass(frozen=True)
class ClusterReport:
    """Alive worker nodes, and the nodes the autoscaler is starting."""

    workers: list[NodeReport]
    launching: int
    failed: int
    pending_demand: list[dict[str, float]] = field(default_factory=list)


def _gcs(address: str) -> Any:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=3):
            pass
    except OSError as exc:
        raise TargetUnavailable(f"the cluster's head at {address} does not answer: {exc}") from None
    from ray._raylet import GcsClient  # type: ignore[attr-defined]

    return GcsClient(address=address)


def node_report(address: str) -> ClusterReport:
    """The cluster's worker nodes (the head, which runs nothing, left out)."""
    from ray._private import ray_constants

    client = _gcs(address)
    infos = client.get_all_node_info(timeout=10)
    raw = client.internal_kv_get(
        ray_constants.DEBUG_AUTOSCALING_STATUS.encode(), namespace=None, timeout=10
    )
    status: Mapping[str, Any] = json.loads(raw) if raw else {}
    report = status.get("autoscaler_report") or {}
    usage = (status.get("load_metrics_report") or {}).get("usage_by_node") or {}
    workers = []
    for node_id, info in infos.items():
        if info.state != 0 or info.is_head_node:  # 0: ALIVE
            continue
        hex_id = node_id.hex()
        by_node = usage.get(hex_id) or usage.get(info.instance_id) or {}
        used = {str(k): float(v[0]) for k, v in by_node.items() if isinstance(v, list | tuple)}
        workers.append(
            NodeReport(
                node_id=info.instance_id or hex_id,
                address=str(info.node_manager_address),
                port=int(info.node_manager_port),
                total={str(k): float(v) for k, v in info.resources_total.items()},
                used=used,
            )
        )
    launching = sum(int(n) for n in (report.get("pending_launches") or {}).values())
    launching += len(report.get("pending_nodes") or [])
    demand = (status.get("load_metrics_report") or {}).get("resource_demand") or []
    return ClusterReport(
        workers=sorted(workers, key=lambda n: n.node_id),
        launching=launching,
        failed=len(report.get("failed_nodes") or []),
        pending_demand=[dict(d[0]) for d in demand if isinstance(d, list | tuple) and d],
    )
