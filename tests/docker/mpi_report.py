"""What the ranks of an MPI run in containers report, and what a run leaves behind: shared by the
local target's tests (test_docker_mpi) and the SSH host's (test_ssh_docker_mpi), so both run
the same job in the same image and read it the same way."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

from ferry import Environment, Experiment, ScriptRunConfig, Workspace
from ferry.envbuild.docker_engine import client
from ferry.runconfig import DockerConfiguration, MpiConfiguration

#: what each rank reports: its MPI world, its variables, its folder, its container (cgroup) and
#: the sum
REPORT = """
import json, os
from mpi4py import MPI
world = MPI.COMM_WORLD
total = world.allreduce(world.rank + 1)
big = bytearray(8 << 20)  # a message larger than the eager limits: the shared-memory path
world.Bcast(big, root=world.size - 1)
print("RANK " + json.dumps({
    "rank": world.rank, "size": world.size, "sum": total, "uid": os.getuid(),
    "ompi": os.environ.get("OMPI_COMM_WORLD_RANK"), "torch": os.environ.get("RANK"),
    "world": os.environ.get("WORLD_SIZE"), "run": os.environ.get("FERRY_RUN_ID"),
    "cwd": os.getcwd(), "box": open("/proc/self/cgroup").read().strip(),
}), flush=True)
"""

#: each rank says it is ready once every rank is, then waits to be stopped
SLEEPER = """
import time
from mpi4py import MPI
MPI.COMM_WORLD.Barrier()
print("READY", MPI.COMM_WORLD.rank, flush=True)
time.sleep(300)
"""

#: rank 1 fails before the others meet it
FAILING_RANK = """
from mpi4py import MPI
if MPI.COMM_WORLD.rank == 1:
    raise KeyError("rank one has no key")
MPI.COMM_WORLD.Barrier()
"""


def mpi_env(name: str = "mpi-box") -> Environment:
    """The ranks' environment: ferry's default base image and mpi4py (one image for all)."""
    env = Environment(name)
    env.python.conda_dependencies.add_pip_package("mpi4py>=4.0")
    return env


def submit_mpi(
    ws: Workspace, folder: Path, body: str, ranks: int, env: Environment | None = None,
    experiment: str = "mpi-docker", **config: Any,
) -> Any:  # fmt: skip
    """Submits ``body`` (as ``folder/job.py``) as an MPI job of ``ranks`` ranks, each in a
    container of its own (:func:`mpi_env`'s image unless ``env``); ``config`` goes to
    ``ScriptRunConfig`` (a ``compute_target``, a time limit)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.py").write_text(textwrap.dedent(body), encoding="utf-8")
    return Experiment(ws, experiment).submit(
        ScriptRunConfig(
            str(folder), "job.py", environment=mpi_env() if env is None else env,
            distributed_job_config=MpiConfiguration(process_count_per_node=ranks),
            docker_runtime_config=DockerConfiguration(use_docker=True), **config,
        )
    )  # fmt: skip


def run_logs(ws: Workspace, run_id: str) -> dict[str, str]:
    """The run's logs by file name: ``std_log.txt`` (rank 0) and ``std_log_rank_N.txt``."""
    folder = ws.runs_dir / run_id / "user_logs"
    return {p.name: p.read_text(errors="replace") for p in sorted(folder.glob("std_log*.txt"))}


def ended(ws: Workspace, run: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The run's details once it has ended, and its logs (:func:`run_logs`)."""
    details = run.wait_for_completion(raise_on_error=False)
    return details, run_logs(ws, run.id)


def rank_reports(logs: dict[str, str]) -> list[dict[str, Any]]:
    """The ranks' :data:`REPORT` lines, read back from every log, in rank order."""
    return sorted(
        (json.loads(line[5:]) for text in logs.values() for line in text.splitlines()
         if line.startswith("RANK ")),
        key=lambda r: int(r["rank"]),
    )  # fmt: skip


def wait_ready(ws: Workspace, run_id: str, ranks: int) -> None:
    """Until every rank of a :data:`SLEEPER` run has said it is ready."""
    deadline = time.monotonic() + 180  # the first run of the session builds the image
    while sum("READY" in t for t in run_logs(ws, run_id).values()) < ranks:
        assert time.monotonic() < deadline, run_logs(ws, run_id)
        time.sleep(0.2)


def rank_containers(run_id: str) -> list[Any]:
    """The containers of the run (by its label) on the session's engine, running or not."""
    # sparse: no inspect per container, which fails for one removed since the listing
    found = client().containers.list(
        all=True, sparse=True, filters={"label": f"ferry.run={run_id}"}
    )
    return list(found)


def cancel_leaves_no_container(ws: Workspace, run: Any, ranks: int) -> None:
    """Cancels a :data:`SLEEPER` run once each of its ranks is ready in a running container of
    its own, and sees every one of them go."""
    wait_ready(ws, run.id, ranks)
    assert len([b for b in rank_containers(run.id) if b.status == "running"]) == ranks
    run.cancel()
    assert run.wait_for_completion(raise_on_error=False)["status"] == "Canceled"
    deadline = time.monotonic() + 20
    while rank_containers(run.id):
        assert time.monotonic() < deadline, [b.name for b in rank_containers(run.id)]
        time.sleep(0.1)
