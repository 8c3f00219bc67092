"""Distributed jobs: one process per rank, with the variables torch.distributed and MPI expect.

The reference's ``PyTorchConfiguration`` and ``MpiConfiguration`` (``ScriptRunConfig(
distributed_job_config=…)``) become a :class:`DistributedPlan` (pure); each rank of the plan gets
``MASTER_ADDR``, ``MASTER_PORT``, ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``NODE_RANK`` (and the
``OMPI_COMM_WORLD_*`` variables for the MPI form), so ``init_process_group(init_method="env://")``
just works. On every target a node's ranks run under the job's watchdog
(:mod:`ferry.agent.watchdog`), which starts them in one process group and stops them all when
one fails; :func:`failure_note` then names the rank that failed first in the main log. On the
local target the MPI form is one real ``mpirun`` instead (:mod:`ferry.targets.mpi`).
:func:`check_backend_here` refuses the NCCL backend where no GPU is to be seen.

Example::

    plan = distributed_plan(communicator="Gloo", node_count=2, process_count=4)  # or None
    for slot in plan.slots():                        # node-major: rank = node * per_node + local
        rank_environment(plan, slot, "10.0.0.4", 29500)["RANK"]
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ferry.errors import ConfigError
from ferry.spec import DistributedPlan as DistributedPlan  # re-exported for the targets
from ferry.spec import RankSlot as RankSlot

_PYTORCH_BACKENDS = ("nccl", "gloo")
_MPI_COMMUNICATORS = ("intelmpi", "openmpi")


class PlanError(ConfigError):
    """A distributed configuration that cannot be launched; the message names the fix."""


def _positive(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PlanError(f"{what} must be a whole number ≥ 1, not {value!r}")
    return value


def distributed_plan(
    *,
    framework: str = "Python",
    communicator: str = "None",
    node_count: object = 1,
    process_count: object = None,
    process_count_per_node: object = None,
) -> DistributedPlan | None:
    """The plan for the reference's settings (``framework``, ``communicator``, ``node_count``,
    ``PyTorchConfiguration.process_count``, ``MpiConfiguration.process_count_per_node``), checked;
    None for an ordinary single-process run."""
    framework, communicator = framework.lower(), communicator.lower()
    nodes = _positive(node_count or 1, "node_count")
    if communicator in _PYTORCH_BACKENDS:
        total = nodes if process_count is None else _positive(process_count, "process_count")
        if total % nodes:
            raise PlanError(
                f"process_count={total} cannot be spread evenly over node_count={nodes}; "
                "use a multiple of node_count (process_count = nodes × processes per node)"
            )
        return DistributedPlan("pytorch", nodes, total // nodes, communicator)
    if communicator in _MPI_COMMUNICATORS:
        per_node = _positive(process_count_per_node or 1, "process_count_per_node")
        return DistributedPlan("mpi", nodes, per_node)
    if framework == "tensorflow" and communicator == "parameterserver":
        raise PlanError(
            "TensorflowConfiguration (parameter server) jobs are not supported yet; use "
            "PyTorchConfiguration or MpiConfiguration"
        )
    return None


def shared_environment(plan: DistributedPlan, master_addr: str, master_port: int) -> dict[str, str]:
    """The variables every rank sees alike (what ``mpirun`` passes on to all its ranks)."""
    env = {
        "MASTER_ADDR": master_addr,
        "MASTER_PORT": str(master_port),
        "WORLD_SIZE": str(plan.world_size),
        "LOCAL_WORLD_SIZE": str(plan.processes_per_node),
        "AZ_BATCH_MASTER_NODE": f"{master_addr}:{master_port}",
        "FERRY_NODE_COUNT": str(plan.node_count),
    }
    if plan.kind == "mpi":
        env["AZ_BATCHAI_MPI_MASTER_NODE"] = master_addr
    return env


def rank_environment(
    plan: DistributedPlan, slot: RankSlot, master_addr: str, master_port: int
) -> dict[str, str]:
    """The variables one rank sees (torch.distributed's ``env://`` and the MPI names)."""
    per = plan.processes_per_node
    env = shared_environment(plan, master_addr, master_port)
    env.update(
        {
            "RANK": str(slot.rank),
            "LOCAL_RANK": str(slot.local_rank),
            "NODE_RANK": str(slot.node_rank),
            "GROUP_RANK": str(slot.node_rank),
        }
    )
    if plan.kind == "mpi":
        env.update(
            {
                "OMPI_COMM_WORLD_RANK": str(slot.rank),
                "OMPI_COMM_WORLD_SIZE": str(plan.world_size),
                "OMPI_COMM_WORLD_LOCAL_RANK": str(slot.local_rank),
                "OMPI_COMM_WORLD_LOCAL_SIZE": str(per),
                "OMPI_COMM_WORLD_NODE_RANK": str(slot.node_rank),
                "PMI_RANK": str(slot.rank),
                "PMI_SIZE": str(plan.world_size),
                "MPI_LOCALRANKID": str(slot.local_rank),
            }
        )
    return env


#: where a machine shows GPUs that NCCL can use: NVIDIA's driver lists each GPU under /proc and
#: makes /dev/nvidiaN; ROCm's RCCL (torch's "nccl" on AMD) needs /dev/kfd; WSL2 has /dev/dxg
_GPU_SIGNS = ("proc/driver/nvidia/gpus/*", "dev/nvidia[0-9]*", "dev/kfd", "dev/dxg")


def gpu_evidence(root: Path = Path("/"), environ: Mapping[str, str] = os.environ) -> list[str]:
    """What shows that a job here (its variables ``environ``) would see a GPU; empty when none.

    Files, not ``torch.cuda``: the check runs at submit, in milliseconds, whatever the job's
    environment holds. ``CUDA_VISIBLE_DEVICES`` set to nothing (or ``-1``) hides every GPU.
    """
    if environ.get("CUDA_VISIBLE_DEVICES", "x").strip() in ("", "-1"):
        return []
    return sorted(str(found) for sign in _GPU_SIGNS for found in root.glob(sign))


def check_backend_here(
    plan: DistributedPlan | None, environ: Mapping[str, str], root: Path = Path("/")
) -> None:
    """Refuse the NCCL backend where no GPU is to be seen, before the job starts: torch would
    otherwise fail inside ``init_process_group`` with an error that does not say why."""
    if plan is None or plan.kind != "pytorch" or plan.backend != "nccl":
        return
    if gpu_evidence(root, environ):
        return
    hidden = environ.get("CUDA_VISIBLE_DEVICES", "x").strip() in ("", "-1")
    why = (
        "the job's CUDA_VISIBLE_DEVICES hides every GPU"
        if hidden
        else "this machine has none (no GPU under /proc/driver/nvidia/gpus or /dev)"
    )
    raise PlanError(
        f"communication_backend='Nccl' needs GPUs (NCCL is a GPU library) and {why}; for "
        "training on CPUs use PyTorchConfiguration(communication_backend='Gloo') and "
        "init_process_group('gloo') in the script (the reference's default backend is 'Nccl')"
    )


def rank_log_name(rank: int) -> str:
    """Rank 0 writes the run's main log; every other rank a log of its own beside it."""
    return "user_logs/std_log.txt" if rank == 0 else f"user_logs/std_log_rank_{rank}.txt"


def append_failure_note(main_log: str, ended: GroupExit, rank_log: str) -> None:
    """Repeat the failing rank's error at the end of the main log (rank 0's is already there)."""
    if ended.failed_rank is None or ended.failed_rank == 0:
        return
    try:
        with open(rank_log, "rb") as fh:
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - 65536))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        text = ""
    note = failure_note(ended.failed_rank, ended.code, text).encode("utf-8")
    with open(main_log, "ab+") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size:
            fh.seek(size - 1)
            if fh.read(1) != b"\n":
                note = b"\n" + note
        fh.write(note)  # append mode: always at the end


def failure_note(rank: int, code: int, rank_log: str, stopped_others: bool = True) -> str:
    """Lines for the main log naming the rank that failed first, ending with its traceback.

    The supervisor takes a failed run's error from the last traceback of the main log, so the
    failing rank's own traceback (or its last lines) is repeated here, last.
    """
    lines = rank_log.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent")]
    tail = lines[starts[-1] :][-200:] if starts else lines[-20:]
    how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
    head = f"ferry: rank {rank} {how}" + (
        "; the other ranks were stopped" if stopped_others else ""
    )
    where = f"ferry: last lines of {rank_log_name(rank)}:"
    return "\n".join([head, where, *tail]) + "\n"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (for MASTER_PORT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class GroupExit:
    """How a group ended: the run's exit code and the rank that failed first (if any)."""

    code: int
    failed_rank: int | None
    codes: dict[int, int] = field(default_factory=dict)
    failed_at: float | None = None
