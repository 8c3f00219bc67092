"""Distributed jobs on a two-node Ray test cluster: a real torch.distributed gloo all-reduce.

The cluster has two Ray nodes (separate raylets and resources on this machine); a 2 × 2 job gets
one placement-group bundle per node (STRICT_SPREAD), so each node runs two ranks.
"""

from __future__ import annotations

import importlib.util
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_ray_support import RayTestCluster, loopback_ray, ray_heartbeats, start_cluster

from ferry.compute import ComputeTarget
from ferry.experiment import Experiment
from ferry.runconfig import PyTorchConfiguration
from ferry.script_run_config import ScriptRunConfig

__all__ = ["loopback_ray", "ray_heartbeats"]

ALL_REDUCE = """
import os, torch, torch.distributed as dist
from ferry import Run
print("rank", os.environ["RANK"], "node", os.environ["NODE_RANK"], "local", os.environ["LOCAL_RANK"],
      "dir", os.path.basename(os.environ["FERRY_RUN_DIR"]), flush=True)
dist.init_process_group("gloo", init_method="env://")
value = torch.tensor([float(dist.get_rank() + 1)])
dist.all_reduce(value)
print("sum", value.item(), "world", dist.get_world_size(), flush=True)
Run.get_context().log("sum", value.item())
dist.destroy_process_group()
"""


@pytest.fixture(scope="module")
def two_nodes(loopback_ray: None) -> Iterator[RayTestCluster]:
    cluster = start_cluster([{"num_cpus": 2}, {"num_cpus": 2}])
    yield cluster
    cluster.stop()


def _submit(workspace, source: Path, body: str, config, name: str):  # type: ignore[no-untyped-def]
    source.mkdir(parents=True, exist_ok=True)
    (source / "job.py").write_text(textwrap.dedent(body), encoding="utf-8")
    src = ScriptRunConfig(
        str(source), "job.py", compute_target="ray", distributed_job_config=config
    )
    src.run_config.environment_variables["GLOO_SOCKET_IFNAME"] = "lo"  # loopback only
    return Experiment(workspace, name).submit(src)


def _attach(workspace, cluster: RayTestCluster) -> None:  # type: ignore[no-untyped-def]
    from ferry.compute import RayCluster

    config = RayCluster.attach_configuration(address=cluster.address, num_cpus=1)
    ComputeTarget.attach(workspace, "ray", config)


def test_torch_gloo_all_reduce_on_two_nodes_by_two_processes(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, two_nodes: RayTestCluster
) -> None:
    if importlib.util.find_spec("torch") is None:
        pytest.fail("this test needs the CPU build of torch: pip install torch==2.13.0")
    _attach(workspace, two_nodes)
    config = PyTorchConfiguration(communication_backend="Gloo", process_count=4, node_count=2)
    run = _submit(workspace, awkward_dir / "src", ALL_REDUCE, config, "ddp")
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Completed", (details.get("error"), _logs(details))
    logs = Path(details["logFiles"]["user_logs/std_log.txt"]).parent
    texts = {0: (logs / "std_log.txt").read_text()}
    for rank in (1, 2, 3):
        texts[rank] = (logs / f"std_log_rank_{rank}.txt").read_text()
    for rank, text in texts.items():
        assert "sum 10.0 world 4" in text, (rank, text)
        node = rank // 2
        assert f"rank {rank} node {node} local {rank % 2} dir node-{node}" in text, text
    assert run.get_metrics()["sum"] == [10.0, 10.0, 10.0, 10.0]
    names = run.get_file_names()
    assert {f"user_logs/std_log_rank_{r}.txt" for r in (1, 2, 3)} <= set(names)


def test_a_failing_rank_stops_the_others_and_fails_the_run_with_its_error(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, two_nodes: RayTestCluster
) -> None:
    _attach(workspace, two_nodes)
    body = """
    import os, time
    rank = int(os.environ["RANK"])
    assert os.environ["WORLD_SIZE"] == "4", os.environ["WORLD_SIZE"]
    print("rank", rank, "pid", os.getpid(), "up", flush=True)
    if rank == 3:
        time.sleep(1)
        raise ValueError("rank three ran out of data")
    time.sleep(300)
    """
    config = PyTorchConfiguration("Gloo", process_count=4, node_count=2)
    run = _submit(workspace, awkward_dir / "mpi", body, config, "mpi")
    details = run.wait_for_completion(raise_on_error=False, timeout_seconds=120)
    assert details["status"] == "Failed", details
    assert "ValueError: rank three ran out of data" in details["error"]["error"]["message"]
    assert details["error"]["exitCode"] == 1
    logs = Path(details["logFiles"]["user_logs/std_log.txt"]).parent
    main = (logs / "std_log.txt").read_text()
    assert "ferry: rank 3 exited with code 1; the other ranks were stopped" in main
    from ferry.liveness import pid_alive

    pids = [
        int(m)
        for r in (0, 1, 2)
        for m in re.findall(
            r"pid (\d+) up",
            (logs / ("std_log.txt" if r == 0 else f"std_log_rank_{r}.txt")).read_text(),
        )
    ]
    assert len(pids) == 3 and not any(pid_alive(p) for p in pids)


def _logs(details: dict) -> str:  # type: ignore[type-arg]
    """Every rank's log, for a failure's message."""
    folder = Path(details["logFiles"]["user_logs/std_log.txt"]).parent
    return "\n".join(f"== {p.name}\n{p.read_text()[-3000:]}" for p in sorted(folder.glob("*.txt")))
