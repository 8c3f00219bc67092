"""AmlCompute on a pool of two SSH hosts: Ray's ``local`` provider starts nodes over real SSH.

The hosts are 127.0.0.2 and 127.0.0.3 (loopback addresses of this machine), each with its own
sshd on port 22 (Ray's node updater speaks SSH on port 22 only), both accepting one key. The
pool declares the hosts' shape and the ``ray`` command there (this venv's). One cluster serves
the module; it is deleted at the end, and with it every Ray process of it on the hosts.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sshd
from test_ray_support import ray_heartbeats

from ferry import ComputeTarget, Experiment, ScriptRunConfig
from ferry.compute_aml import AmlCompute
from ferry.compute_settings import declare_pool, pool, remove_pool
from ferry.errors import ConfigError, TargetNotFound
from ferry.targets.ray.autoscale import Pool
from ferry.targets.ray.managed import cluster_folder, read_state
from ferry.testing.conformance import wait_until

__all__ = ["ray_heartbeats"]

HOSTS = ("127.0.0.2", "127.0.0.3")
IDLE = 10
NAME = "pool-cluster"


class HostServer(sshd.SshServer):
    """sshd on ``host``:22, as a pool host listens."""

    def __init__(self, folder: Path, host: str) -> None:
        super().__init__(folder)
        self.host, self.port = host, 22
        text = self.config_file.read_text()
        text = text.replace("ListenAddress 127.0.0.1", f"ListenAddress {host}")
        self.config_file.write_text(re.sub(r"(?m)^Port \d+$", "Port 22", text))

    def start(self) -> None:
        os.makedirs("/run/sshd", exist_ok=True)
        with open(self.folder / "sshd.log", "ab") as log:
            self.proc = subprocess.Popen(
                [sshd.SSHD, "-D", "-e", "-f", str(self.config_file)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"sshd could not listen on {self.host}:22 (is port 22 taken there?):\n"
                    f"{self.log_tail()}"
                )
            try:
                with socket.create_connection((self.host, 22), timeout=1) as sock:
                    if sock.recv(64).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"sshd did not answer on {self.host}:22:\n{self.log_tail()}")


@pytest.fixture(scope="module")
def hosts() -> Iterator[list[HostServer]]:
    if not os.path.exists(sshd.SSHD) or os.getuid() != 0:
        pytest.fail(
            "the pool tests start sshd as root on 127.0.0.2:22 and 127.0.0.3:22: run them as "
            "root with openssh-server installed (`apt-get install openssh-server`)"
        )
    folder = Path(tempfile.mkdtemp(prefix="ferry-pool-"))
    servers = []
    for host in HOSTS:
        (folder / host).mkdir()
        servers.append(HostServer(folder / host, host))
    key = servers[0].folder / "authorized_keys"
    shutil.copyfile(key, servers[1].folder / "authorized_keys")  # one key for the pool
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, hosts: list[HostServer]) -> Iterator[Any]:
    from ferry.workspace import Workspace

    workspace = Workspace.create(tmp_path_factory.mktemp("pool") / "pool ws")
    declared = Pool(
        hosts=HOSTS, username=hosts[0].user, private_key_file=str(hosts[0].user_key_file),
        cpus=1, memory_gb=4, ray_command=str(Path(sys.executable).parent / "ray"),
    )  # fmt: skip
    declare_pool(workspace.path, declared)
    yield workspace
    workspace.store.close()


@pytest.fixture(scope="module")
def cluster(ws: Any) -> Iterator[AmlCompute]:
    config = AmlCompute.provisioning_configuration(
        vm_size="pool-1cpu", max_nodes=2, idle_seconds_before_scaledown=IDLE
    )
    created = ComputeTarget.create(ws, NAME, config)
    assert isinstance(created, AmlCompute)
    yield created
    try:
        AmlCompute(ws, NAME).delete()
    except TargetNotFound:
        pass


def _session_processes(temp_dir: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if f"{temp_dir}/session_" in line:
            found.append(f"{pid}: {line[:120]}")
    return found


def test_the_pool_is_declared_once_and_checked(ws: Any, tmp_path: Path) -> None:
    declared = pool(ws.path)
    assert declared is not None and declared.hosts == HOSTS
    assert AmlCompute.supported_vmsizes(ws) == [
        {"name": "pool-1cpu", "vCPUs": 1.0, "gpus": 0, "memoryGB": 4.0, "maxResourceVolumeMB": 0}
    ]
    with pytest.raises(ConfigError, match="does not exist"):
        declare_pool(tmp_path, Pool(HOSTS, "me", "/no/key", 1, 4))
    with pytest.raises(ConfigError, match="CPUs and memory"):
        declare_pool(tmp_path, Pool(HOSTS, "me", "", 0, 4))
    remove_pool(tmp_path)
    assert pool(tmp_path) is None


def test_a_run_gets_a_node_started_on_a_pool_host_over_ssh(
    ws: Any, cluster: AmlCompute, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "job.py").write_text(
        textwrap.dedent(
            """
            import os
            from azureml.core import Run
            print("node ip:", os.environ.get("MASTER_ADDR", "-"), flush=True)
            Run.get_context().log("ok", 1)
            """
        ),
        encoding="utf-8",
    )
    exp = Experiment(ws, "pool")
    latency = {}
    for kind in ("cold", "warm"):  # a node starts for the first run; the second finds it up
        t0 = time.monotonic()
        run = exp.submit(ScriptRunConfig(str(source), "job.py", compute_target=NAME))
        log_path = ws.runs_dir / run.id / "user_logs" / "std_log.txt"
        try:
            wait_until(
                lambda p=log_path: p.exists() and "node ip:" in p.read_text(errors="replace"),
                timeout=180, what="the job's first line",
            )  # fmt: skip
        except AssertionError as exc:
            said = log_path.read_text(errors="replace") if log_path.exists() else "(no log)"
            supervisor = ws.runs_dir / run.id / "supervisor.log"
            tail = supervisor.read_text(errors="replace")[-3000:] if supervisor.exists() else ""
            raise AssertionError(f"{exc}; run {run.get_status()}:\n{said}\n{tail}") from None
        latency[f"{kind}_first_line_s"] = round(time.monotonic() - t0, 2)
        details = run.wait_for_completion(raise_on_error=False, timeout_seconds=180)
        log = log_path.read_text(encoding="utf-8")
        assert details["status"] == "Completed", log
        assert run.get_metrics() == {"ok": 1}
        nodes = cluster.list_nodes()
        assert len(nodes) == 1 and nodes[0]["privateIpAddress"] in HOSTS, nodes
    print(f"\nAmlCompute on a pool of SSH hosts: {latency}")
    assert latency["warm_first_line_s"] < latency["cold_first_line_s"]
    idle_from = time.monotonic()
    wait_until(lambda: cluster.list_nodes() == [], timeout=IDLE + 40, what="the idle node to stop")
    assert time.monotonic() - idle_from >= IDLE - 3


def test_delete_ends_the_clusters_processes_on_the_hosts(ws: Any, cluster: AmlCompute) -> None:
    cluster.update(min_nodes=1)
    cluster.wait_for_completion(min_node_count=1, timeout_in_minutes=2)
    assert [n["privateIpAddress"] in HOSTS for n in cluster.list_nodes()] == [True]
    state = read_state(cluster_folder(Path(ws.path), NAME))
    assert state is not None and _session_processes(state.temp_dir)
    cluster.delete()
    wait_until(lambda: _session_processes(state.temp_dir) == [], timeout=20,
               what="no process of the cluster's session")  # fmt: skip
