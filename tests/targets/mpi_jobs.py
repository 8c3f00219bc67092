"""MPI jobs that the local target's tests (test_mpi) and the SSH host's (tests/ssh/test_ssh_mpi,
which puts this folder on its path) both run, and how each is read back from the run's logs:
one job, one reading, whichever target started mpirun."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from ferry.agent.proc import pid_alive
from ferry.testing.conformance import wait_until

#: two ranks say their pid and their mpirun's (their parent), then wait to be stopped
SLEEPER = """
import os, time
from mpi4py import MPI
MPI.COMM_WORLD.Barrier()
print("pid", os.getpid(), "mpirun", os.getppid(), flush=True)
time.sleep(300)
"""

#: three ranks say their pid and meet; rank 2 then fails while the others would sleep
FAILING_RANK = """
import os, time
from mpi4py import MPI
world = MPI.COMM_WORLD
print("rank", world.Get_rank(), "pid", os.getpid(), flush=True)
world.Barrier()
if world.Get_rank() == 2:
    raise KeyError("rank two lost its shard")
time.sleep(300)
"""


def need_open_mpi() -> None:
    """Open MPI on this machine (the local target and the SSH host alike) and mpi4py in the
    job's Python are required (not optional) here; say how to get them."""
    if shutil.which("mpirun") is None:
        pytest.fail("these tests need Open MPI: make sysdeps (apt-get install openmpi-bin)")
    if importlib.util.find_spec("mpi4py") is None:
        pytest.fail("these tests need mpi4py: .venv/bin/python -m pip install 'mpi4py>=3.1'")


def rank_pids(texts: list[str], word: str = "pid") -> list[int]:
    """The numbers after ``word`` in the ranks' logs."""
    return [int(p) for text in texts for p in re.findall(rf"\b{word} (\d+)", text)]


def running_ranks(user_logs: Path) -> list[int]:
    """The pids of both ranks of a :data:`SLEEPER` run and of their mpirun, once both ranks
    have said them in their logs under ``user_logs``."""
    rank_logs = [user_logs / "std_log.txt", user_logs / "std_log_rank_1.txt"]

    def said() -> list[str] | None:
        # "mpirun N", not "mpirun": ferry's own first lines name the mpirun it started
        texts = [p.read_text() if p.exists() else "" for p in rank_logs]
        return texts if all(rank_pids([t], "mpirun") for t in texts) else None

    texts = wait_until(said, timeout=60, what="both ranks")
    pids = sorted(set(rank_pids(texts) + rank_pids(texts, "mpirun")))
    assert len(pids) == 3  # two ranks, one mpirun (their parent)
    return pids


def rank_two_failed(details: dict[str, Any], logs: list[str]) -> None:
    """A :data:`FAILING_RANK` run failed with rank 2's error, said in the main log (``logs[0]``;
    the others are the other ranks'), and every rank has ended."""
    assert details["status"] == "Failed", logs[0][-2000:]
    assert "KeyError: 'rank two lost its shard'" in details["error"]["error"]["message"]
    assert details["error"]["exitCode"] == 1
    assert "ferry: rank 2 exited with code 1" in logs[0]
    pids = rank_pids(logs)
    assert len(pids) == 3
    wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=15, what="the ranks to end")
