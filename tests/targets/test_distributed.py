"""Distributed plans and rank variables (pure), a node's ranks under the watchdog, and distributed
runs on the local target: a real torch.distributed gloo all-reduce with 4 processes, a failing
rank, a cancel, and the NCCL backend refused where there is no GPU. MPI runs (a real mpirun) are
in test_mpi.py."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from ferry.agent.proc import pid_alive
from ferry.errors import ConfigError
from ferry.experiment import Experiment
from ferry.runconfig import MpiConfiguration, PyTorchConfiguration, TensorflowConfiguration
from ferry.script_run_config import ScriptRunConfig
from ferry.targets.distributed import (
    DistributedPlan,
    GroupExit,
    RankSlot,
    append_failure_note,
    failure_note,
    rank_environment,
    rank_log_name,
)
from ferry.targets.watched import JobProcess, WatchedJob


def _definition(config: Any) -> dict[str, Any]:
    return ScriptRunConfig(".", "train.py", distributed_job_config=config).to_dict()


def plan_from_definition(definition: dict[str, Any]) -> DistributedPlan | None:
    """The plan the one validator (ferry.jobdef) reads from a stored definition."""
    from pathlib import Path

    from ferry.jobdef import job_spec

    job = job_spec(
        run_id="e_1_abcdef12", experiment="e", target="local", run_dir=Path("/r"),
        definition=definition,
    )  # fmt: skip
    return job.distributed


# ------------------------------------------------------------------------------------------------
# plans (pure)


def test_a_plain_run_has_no_plan() -> None:
    assert plan_from_definition(ScriptRunConfig(".", "train.py").to_dict()) is None


def test_pytorch_process_count_defaults_to_one_per_node() -> None:
    plan = plan_from_definition(_definition(PyTorchConfiguration("Gloo", node_count=3)))
    assert plan == DistributedPlan("pytorch", 3, 1, "gloo")


def test_pytorch_process_count_is_spread_over_nodes() -> None:
    plan = plan_from_definition(_definition(PyTorchConfiguration("Nccl", 8, node_count=2)))
    assert plan is not None and plan.processes_per_node == 4 and plan.world_size == 8
    assert plan.backend == "nccl"
    assert [(s.rank, s.node_rank, s.local_rank) for s in plan.slots()][3:5] == [
        (3, 0, 3),
        (4, 1, 0),
    ]


def test_a_process_count_that_does_not_divide_is_refused() -> None:
    with pytest.raises(ConfigError, match="multiple of node_count"):
        plan_from_definition(_definition(PyTorchConfiguration("Gloo", 3, node_count=2)))


def test_mpi_plan_and_its_variables() -> None:
    plan = plan_from_definition(
        _definition(MpiConfiguration(process_count_per_node=2, node_count=2))
    )
    assert plan == DistributedPlan("mpi", 2, 2)
    env = rank_environment(plan, RankSlot(rank=3, node_rank=1, local_rank=1), "10.0.0.4", 29500)
    assert env["OMPI_COMM_WORLD_RANK"] == "3" and env["OMPI_COMM_WORLD_SIZE"] == "4"
    assert env["OMPI_COMM_WORLD_LOCAL_RANK"] == "1" and env["OMPI_COMM_WORLD_LOCAL_SIZE"] == "2"
    assert env["AZ_BATCHAI_MPI_MASTER_NODE"] == "10.0.0.4"
    assert env["MASTER_ADDR"] == "10.0.0.4" and env["RANK"] == "3"


def test_pytorch_variables_for_env_init() -> None:
    plan = DistributedPlan("pytorch", 2, 2, "gloo")
    env = rank_environment(plan, RankSlot(2, 1, 0), "head", 1234)
    assert {k: env[k] for k in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK")} == {
        "MASTER_ADDR": "head",
        "MASTER_PORT": "1234",
        "WORLD_SIZE": "4",
        "RANK": "2",
    }
    assert env["LOCAL_RANK"] == "0" and env["NODE_RANK"] == "1"
    assert not any(k.startswith("OMPI_") for k in env)


def test_tensorflow_parameter_server_is_refused_clearly() -> None:
    with pytest.raises(ConfigError, match="not supported yet"):
        plan_from_definition(_definition(TensorflowConfiguration(worker_count=2)))


def test_rank_log_names() -> None:
    assert rank_log_name(0) == "user_logs/std_log.txt"
    assert rank_log_name(3) == "user_logs/std_log_rank_3.txt"


def test_failure_note_ends_with_the_ranks_traceback() -> None:
    log = "step 1\nTraceback (most recent call last):\n  File x\nValueError: bad\n"
    note = failure_note(2, 1, log)
    assert note.splitlines()[0] == "ferry: rank 2 exited with code 1; the other ranks were stopped"
    assert note.rstrip().endswith("ValueError: bad") and "step 1" not in note
    assert "killed by signal 9" in failure_note(1, -9, "no traceback")


def test_append_failure_note_only_for_ranks_other_than_zero(tmp_path: Path) -> None:
    main, rank = tmp_path / "main.txt", tmp_path / "rank.txt"
    main.write_text("partial line")
    rank.write_text("Traceback (most recent call last):\nKeyError: 'x'\n")
    append_failure_note(str(main), GroupExit(1, 0), str(rank))
    assert main.read_text() == "partial line"
    append_failure_note(str(main), GroupExit(1, 1), str(rank))
    assert main.read_text().startswith("partial line\nferry: rank 1 exited with code 1")
    assert main.read_text().endswith("KeyError: 'x'\n")


# ------------------------------------------------------------------------------------------------
# a node's ranks under the watchdog (as every target runs them)


def _rank(tmp_path: Path, rank: int, code: str, **env: str) -> JobProcess:
    return JobProcess(
        rank, [sys.executable, "-c", code], {**os.environ, **env}, str(tmp_path / f"{rank}.log")
    )


def _end(job: WatchedJob, seconds: float = 30.0) -> int:
    deadline = time.monotonic() + seconds
    while (code := job.wait(0.05)) is None:
        assert time.monotonic() < deadline, "the ranks did not end"
    return code


def test_a_failing_rank_stops_the_others(tmp_path: Path) -> None:
    sleeper = "import os, time; print(os.getpid(), flush=True); time.sleep(60)"
    ranks = [
        _rank(tmp_path, 0, sleeper),
        _rank(tmp_path, 1, "import time; time.sleep(0.3); raise SystemExit(3)"),
        _rank(tmp_path, 2, sleeper),
    ]
    job = WatchedJob.start(ranks, tmp_path, tmp_path, grace=2)
    t = time.monotonic()
    assert _end(job) == 3 and time.monotonic() - t < 10
    result = job.result()
    assert result["failed_rank"] == 1
    assert result["codes"]["0"] < 0 and result["codes"]["2"] < 0  # stopped by a signal
    assert _live_members(job.pgid) == []


def test_ranks_that_all_succeed_end_with_zero(tmp_path: Path) -> None:
    job = WatchedJob.start(
        [_rank(tmp_path, r, f"print('rank {r}')") for r in range(3)], tmp_path, tmp_path, 2
    )
    assert _end(job) == 0
    result = job.result()
    assert result["failed_rank"] is None and result["codes"] == {"0": 0, "1": 0, "2": 0}
    assert (tmp_path / "2.log").read_text() == "rank 2\n"


def test_cancel_ends_every_rank_and_their_children(tmp_path: Path) -> None:
    child = (
        "import os, subprocess, sys, time; "
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], "
        "start_new_session=bool(int(os.environ['RANK']))); "
        "open(os.environ['PID_FILE'], 'w').write(str(c.pid)); "
        "time.sleep(60)"
    )
    ranks = [
        _rank(tmp_path, r, child, RANK=str(r), PID_FILE=str(tmp_path / f"{r}.pid"))
        for r in range(2)
    ]
    job = WatchedJob.start(ranks, tmp_path, tmp_path, grace=1)
    deadline = time.monotonic() + 30
    while (
        len([p for p in tmp_path.glob("*.pid") if p.read_text()]) < 2
    ):  # both grandchildren exist before the stop (one of them in a session of its own)
        assert time.monotonic() < deadline, "the ranks' children never started"
        time.sleep(0.02)
    grandchildren = [int(p.read_text()) for p in tmp_path.glob("*.pid")]
    assert len(_live_members(job.pgid)) == 3  # the ranks and rank 0's child; rank 1's left
    job.cancel(1)
    assert _end(job) < 0 and job.result()["reason"] == "cancel"
    assert _live_members(job.pgid) == []
    deadline = time.monotonic() + 5
    while any(pid_alive(p) for p in grandchildren):
        assert time.monotonic() < deadline, "a rank's child outlived the cancel"
        time.sleep(0.05)


def _live_members(pgid: int) -> list[int]:
    """Processes of the group that are neither gone nor zombies (from /proc)."""
    live = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            live.append(int(entry))
    return live


# ------------------------------------------------------------------------------------------------
# on the local target


ALL_REDUCE = """
import os, torch, torch.distributed as dist
from ferry import Run
dist.init_process_group("gloo", init_method="env://")
value = torch.tensor([float(dist.get_rank() + 1)])
dist.all_reduce(value)
print("rank", os.environ["RANK"], "local", os.environ["LOCAL_RANK"], "sum", value.item(), flush=True)
Run.get_context().log("sum", value.item())
dist.destroy_process_group()
"""


def need_torch() -> None:
    """torch is required (not optional) for these tests; say how to get the CPU build."""
    if importlib.util.find_spec("torch") is None:
        pytest.fail(
            "this test needs the CPU build of torch: .venv/bin/python -m pip install torch==2.13.0"
        )


def _submit(workspace, folder: Path, body: str, config: Any):  # type: ignore[no-untyped-def]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.py").write_text(textwrap.dedent(body), encoding="utf-8")
    src = ScriptRunConfig(str(folder), "job.py", distributed_job_config=config)
    src.run_config.environment_variables["GLOO_SOCKET_IFNAME"] = "lo"
    return Experiment(workspace, "dist").submit(src)


def test_torch_gloo_all_reduce_with_four_local_processes(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path
) -> None:
    need_torch()
    run = _submit(workspace, awkward_dir / "src", ALL_REDUCE, PyTorchConfiguration("Gloo", 4))
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Completed", details
    logs = Path(details["logFiles"]["user_logs/std_log.txt"]).parent
    for rank in range(4):
        text = (logs / ("std_log.txt" if rank == 0 else f"std_log_rank_{rank}.txt")).read_text()
        assert f"rank {rank} local {rank} sum 10.0" in text, text
    assert run.get_metrics()["sum"] == [10.0] * 4
    assert {f"user_logs/std_log_rank_{r}.txt" for r in (1, 2, 3)} <= set(run.get_file_names())


def test_a_failing_local_rank_fails_the_run_with_its_error(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path
) -> None:
    body = """
    import os, time
    rank = int(os.environ["RANK"])
    print("rank", rank, "pid", os.getpid(), flush=True)
    if rank == 2:
        time.sleep(0.5)
        raise KeyError("rank two lost its shard")
    time.sleep(300)
    """
    run = _submit(workspace, awkward_dir / "fail", body, PyTorchConfiguration("Gloo", 3))
    t = time.monotonic()
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Failed" and time.monotonic() - t < 30
    assert "KeyError: 'rank two lost its shard'" in details["error"]["error"]["message"]
    assert details["error"]["exitCode"] == 1
    logs = Path(details["logFiles"]["user_logs/std_log.txt"]).parent
    pids = [int(p) for f in logs.iterdir() for p in re.findall(r"pid (\d+)", f.read_text())]
    assert len(pids) == 3 and not any(pid_alive(p) for p in pids)


def test_cancel_stops_every_local_rank(workspace, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from ferry.testing.conformance import wait_until

    body = "import os, time; print('pid', os.getpid(), flush=True); time.sleep(300)"
    run = _submit(workspace, awkward_dir / "cancel", body, PyTorchConfiguration("Gloo", 2))
    logs = run.run_dir / "user_logs"
    wait_until(
        lambda: (
            (logs / "std_log_rank_1.txt").exists()
            and "pid" in (logs / "std_log_rank_1.txt").read_text()
            and "pid" in (logs / "std_log.txt").read_text()
        ),
        what="both ranks",
    )
    assert run.cancel() is True
    assert run.wait_for_completion(raise_on_error=False)["status"] == "Canceled"
    pids = [int(p) for f in logs.iterdir() for p in re.findall(r"pid (\d+)", f.read_text())]
    wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=10, what="the ranks to die")


def test_several_nodes_are_refused_on_the_local_target_before_the_run_exists(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path
) -> None:
    from ferry.tracking import RunQuery

    with pytest.raises(ConfigError, match="node_count=2 cannot run here"):
        _submit(
            workspace,
            awkward_dir / "nodes",
            "print('x')",
            PyTorchConfiguration("Gloo", 4, node_count=2),
        )
    assert workspace.store.list_runs(RunQuery()) == []


def test_a_process_count_that_does_not_divide_is_refused_at_submit(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path
) -> None:
    with pytest.raises(ConfigError, match="multiple of node_count"):
        _submit(workspace, awkward_dir / "odd", "print('x')", PyTorchConfiguration("Gloo", 3, 2))


def test_the_plan_from_the_references_settings() -> None:
    from ferry.targets.distributed import distributed_plan

    assert distributed_plan(communicator="Gloo", node_count=2, process_count=4) == (
        DistributedPlan("pytorch", 2, 2, "gloo")
    )
    assert distributed_plan(communicator="OpenMpi", process_count_per_node=3) == (
        DistributedPlan("mpi", 1, 3)
    )
    assert distributed_plan() is None
    with pytest.raises(ConfigError, match="node_count must be a whole number"):
        distributed_plan(communicator="Gloo", node_count="2")


# ------------------------------------------------------------------------------------------------
# the NCCL backend needs GPUs


def _fake_machine(root: Path, *paths: str) -> Path:
    for path in paths:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).touch()
    return root


def test_gpus_are_seen_from_the_drivers_files(tmp_path: Path) -> None:
    from ferry.targets.distributed import gpu_evidence

    nvidia = _fake_machine(tmp_path / "n", "proc/driver/nvidia/gpus/0000:01:00.0/information")
    assert gpu_evidence(nvidia, {}) == [str(nvidia / "proc/driver/nvidia/gpus/0000:01:00.0")]
    assert gpu_evidence(_fake_machine(tmp_path / "a", "dev/kfd"), {}) != []  # ROCm
    assert gpu_evidence(_fake_machine(tmp_path / "c", "dev/null", "proc/cpuinfo"), {}) == []
    for hidden in ("", "-1"):
        assert gpu_evidence(nvidia, {"CUDA_VISIBLE_DEVICES": hidden}) == []
    assert gpu_evidence(nvidia, {"CUDA_VISIBLE_DEVICES": "0"}) != []


def test_nccl_is_refused_without_gpus_and_gloo_never(tmp_path: Path) -> None:
    from ferry.targets.distributed import PlanError, check_backend_here

    cpu_only = _fake_machine(tmp_path / "c", "proc/cpuinfo")
    gpu = _fake_machine(tmp_path / "g", "dev/nvidia0")
    nccl, gloo = DistributedPlan("pytorch", 1, 2, "nccl"), DistributedPlan("pytorch", 1, 2, "gloo")
    with pytest.raises(PlanError, match="this machine has none"):
        check_backend_here(nccl, {}, cpu_only)
    with pytest.raises(PlanError, match="CUDA_VISIBLE_DEVICES hides every GPU"):
        check_backend_here(nccl, {"CUDA_VISIBLE_DEVICES": ""}, gpu)
    check_backend_here(nccl, {}, gpu)
    check_backend_here(gloo, {}, cpu_only)
    check_backend_here(DistributedPlan("mpi", 1, 2), {}, cpu_only)
    check_backend_here(None, {}, cpu_only)


def test_an_nccl_run_on_this_machine_without_gpus_is_refused_at_submit(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path
) -> None:
    """The reference's default backend is NCCL: on a CPU machine the run is refused before it
    exists, saying to use Gloo — not left to fail inside torch with an NCCL error."""
    from ferry.targets.distributed import gpu_evidence
    from ferry.tracking import RunQuery

    assert gpu_evidence() == [], "this test is about a machine without GPUs; this one has some"
    body = """
    import torch.distributed as dist
    dist.init_process_group("nccl", init_method="env://")
    """
    with pytest.raises(ConfigError) as refused:
        _submit(workspace, awkward_dir / "nccl", body, PyTorchConfiguration(process_count=2))
    message = str(refused.value)
    assert "communication_backend='Nccl' needs GPUs" in message
    assert "PyTorchConfiguration(communication_backend='Gloo')" in message
    assert workspace.store.list_runs(RunQuery()) == []
