"""Sweeps on the other targets: the children are ordinary runs, so any target runs them —
an SSH host (real sshd on loopback), a Ray cluster (two nodes on loopback), Spark (local[2])."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sweep_helpers import sweep_config

from ferry import ComputeTarget, Experiment, Workspace
from ferry.compute import RayCluster, RemoteCompute, SparkCompute
from ferry.hyperdrive import RandomParameterSampling, choice, uniform

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "targets"))  # the targets' fixtures
import sshd
from test_ray_support import LOOPBACK_ENV, RayTestCluster, start_cluster

ssh_server = sshd.ssh_server
remote_root = sshd.remote_root

TRAIN = """\
import argparse
from ferry import Run
parser = argparse.ArgumentParser()
parser.add_argument("--alpha", type=float)
parser.add_argument("--kernel")
args = parser.parse_args()
Run.get_context().log("acc", args.alpha)
print("kernel", args.kernel)
"""


def _run_sweep(
    experiment: Experiment, source: Path, target: str, total: int, **kwargs: object
) -> None:
    (source / "train.py").write_text(TRAIN, encoding="utf-8")
    sampling = RandomParameterSampling(
        {"--alpha": uniform(0, 1), "--kernel": choice("linear", "rbf")}, properties={"seed": 2}
    )
    config = sweep_config(
        source, target, hyperparameter_sampling=sampling, max_total_runs=total, **kwargs
    )
    if target == "spark":
        config.script_run_config().run_config.framework = "PySpark"
    run = experiment.submit(config)
    details = run.wait_for_completion(timeout_seconds=600, raise_on_error=False)
    assert details["status"] == "Completed", details
    values = {k: json.loads(v) for k, v in run.get_hyperparameters().items()}
    metrics = run.get_metrics()
    assert len(values) == total
    for child in run.get_children():
        record = child.record
        assert record.target == target and record.status.value == "Completed"
        assert metrics[child.id]["acc"] == values[child.id]["--alpha"]  # its own values arrived


def test_a_sweep_on_an_ssh_host(
    workspace: Workspace,
    experiment: Experiment,
    source: Path,
    ssh_server: sshd.SshServer,
    remote_root: Path,
) -> None:
    config = ssh_server.attach_config(work_dir=str(remote_root))
    ComputeTarget.attach(workspace, "vm", RemoteCompute.attach_configuration(**config))
    _run_sweep(experiment, source, "vm", 4, max_concurrent_runs=2)


@pytest.fixture
def ray_cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[RayTestCluster]:
    for key, value in LOOPBACK_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FERRY_HEARTBEAT_SECONDS", "1")
    cluster = start_cluster([{"num_cpus": 1}, {"num_cpus": 1}])
    yield cluster
    cluster.stop()


def test_a_sweep_on_a_ray_cluster(
    workspace: Workspace, experiment: Experiment, source: Path, ray_cluster: RayTestCluster
) -> None:
    config = RayCluster.attach_configuration(address=ray_cluster.address, lease_seconds=20)
    ComputeTarget.attach(workspace, "ray", config)
    _run_sweep(experiment, source, "ray", 3)  # all at once: Ray places them on its two nodes


def test_a_sweep_on_spark(workspace: Workspace, experiment: Experiment, source: Path) -> None:
    ComputeTarget.attach(workspace, "spark", SparkCompute.attach_configuration(master="local[2]"))
    _run_sweep(experiment, source, "spark", 2)
