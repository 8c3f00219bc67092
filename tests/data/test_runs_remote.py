"""Datasets in runs on an SSH host (a real sshd on loopback) and a Ray cluster: inputs go into
the host's or node's content-addressed cache — only what it lacks moves — and outputs come back
to be saved."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sshd
from jobs import log_of, seen, write_job
from sshd import SshServer
from test_ray_support import RayTestCluster, loopback_ray, ray_heartbeats, start_cluster

from ferry.compute import ComputeTarget, RayCluster, RemoteCompute
from ferry.data import Dataset, OutputFileDatasetConfig
from ferry.experiment import Experiment
from ferry.script_run_config import ScriptRunConfig

ssh_server = sshd.ssh_server  # the fixtures, by name
remote_root = sshd.remote_root
__all__ = ["loopback_ray", "ray_heartbeats"]

SENT = re.compile(r"dataset mnist:1 as input 'mnist' at (.+?) \(mount\); sent (\d+) bytes")


def _submit(ws: Any, source: Path, target: str, arguments: list[Any]) -> Any:
    config = ScriptRunConfig(str(source), "job.py", arguments=arguments, compute_target=target)
    config.run_config.environment_variables["REGISTER"] = "1"
    run = Experiment(ws, "remote-data").submit(config)
    run.wait_for_completion(raise_on_error=False)
    return run


def _dataset(ws: Any, awkward_dir: Path) -> Any:
    from helpers import write_files

    data = write_files(
        awkward_dir / "remote data",
        {"big.bin": b"\x01" * (3 << 20), "small.txt": "small", "d/e.txt": "deep"},
    )
    ds = ws.get_default_datastore()
    ds.upload(str(data), "r", show_progress=False)
    return Dataset.File.from_files((ds, "r/")).register(ws, "mnist")


def _check_run(run: Any, ws: Any) -> dict[str, Any]:
    assert run.get_status() == "Completed", log_of(run)
    job = seen(run)
    assert job["read"]["mnist"] == {
        "big.bin": "\x01" * (3 << 20),
        "small.txt": "small",
        "d/e.txt": "deep",
    }
    assert job["read"]["copy"]["small.txt"] == "small"
    assert Dataset.get_by_name(ws, "out").to_path() == ["/made-by.txt", "/sub/n.txt"]
    assert [m.name for m in run.get_models()] == ["job-model"]
    return job


def test_ssh_runs_read_datasets_from_the_hosts_cache_and_the_second_run_sends_nothing(
    workspace: Any, awkward_dir: Path, ssh_server: SshServer, remote_root: Path
) -> None:
    config = ssh_server.attach_config(work_dir=str(remote_root))
    ComputeTarget.attach(workspace, "vm", RemoteCompute.attach_configuration(**config))
    mnist = _dataset(workspace, awkward_dir)
    source = write_job(awkward_dir / "src")
    arguments = [
        mnist.as_named_input("mnist").as_mount(),
        mnist.as_named_input("copy").as_download(),
        OutputFileDatasetConfig("out").register_on_complete("out"),
    ]
    first = _submit(workspace, source, "vm", arguments)
    job = _check_run(first, workspace)
    shared, sent = SENT.search(log_of(first)).groups()  # type: ignore[union-attr]
    assert int(sent) > 3 << 20 and Path(shared).is_relative_to(remote_root / "data")
    assert job["argv"][0] == shared and not Path(shared, "big.bin").stat().st_mode & 0o222

    second = _submit(workspace, source, "vm", arguments)
    _check_run(second, workspace)
    again, sent_again = SENT.search(log_of(second)).groups()  # type: ignore[union-attr]
    assert (again, int(sent_again)) == (shared, 0)  # the host had every blob: nothing moved
    assert Dataset.get_by_name(workspace, "out").version == 2
    assert not (remote_root / "runs" / second.id).exists()  # the run folder was cleaned up


@pytest.fixture(scope="module")
def ray_cluster(loopback_ray: None) -> Iterator[RayTestCluster]:
    cluster = start_cluster([{"num_cpus": 2}])
    yield cluster
    cluster.stop()


def test_ray_runs_read_datasets_on_the_node_and_the_second_run_sends_nothing(
    workspace: Any, awkward_dir: Path, ray_cluster: RayTestCluster, tmp_path: Path
) -> None:
    node_dir = tmp_path / "ray node"
    config = RayCluster.attach_configuration(
        address=ray_cluster.address, lease_seconds=20, node_dir=str(node_dir)
    )
    ComputeTarget.attach(workspace, "ray", config)
    mnist = _dataset(workspace, awkward_dir)
    source = write_job(awkward_dir / "src")
    arguments = [
        mnist.as_named_input("mnist").as_mount(),
        mnist.as_named_input("copy").as_download(),
        OutputFileDatasetConfig("out").register_on_complete("out"),
    ]
    first = _submit(workspace, source, "ray", arguments)
    job = _check_run(first, workspace)
    assert Path(job["argv"][0]).is_relative_to(node_dir / "data")
    assert re.search(r"sent [1-9][\d.]* MiB of them", log_of(first))
    second = _submit(workspace, source, "ray", arguments)
    _check_run(second, workspace)
    assert "sent 0.0 MiB of them" in log_of(second)
