"""What ``mpirun`` starts for each rank: the job's command, its output in the rank's own log.

:mod:`.mpirun` runs ``mpirun -np N python -I -S mpi_rank.py <command.json>``; each
copy reads the job's command line from that file (never from mpirun's own command line, where an
argument ``:`` would split the job in two, Open MPI's syntax for several programs), adds the
rank variables torch.distributed scripts read (``RANK``, ``LOCAL_RANK`` … from Open MPI's
``OMPI_COMM_WORLD_*``), points its output at its log and *execs* the job — so the job is
mpirun's own child, signalled and reaped by it as usual. Rank 0 keeps mpirun's output, which the
job's watchdog writes to the run's main log; rank N appends to ``std_log_rank_N.txt`` beside it.
Standard library only (Python 3.8+): it runs before the job's environment exists, on this
machine or, shipped in the agent's package, on an SSH host.

``command.json``: ``{"argv": ["/env/bin/python", "train.py", …], "logs": "…/user_logs"}``.

In a Docker run each rank is a container (:func:`ferry.targets.container.mpi_launch`):
``command.json`` then also holds ``"container": {"head": ["docker", "run", …options],
"name": "ferry-<run id>-", "tail": [image, wrapper…]}``, and the rank execs Docker's client
with ``head``, its own name and label, the MPI variables by name (``--env OMPI_…``: Open MPI's
and PMIx's, which connect the rank inside to this mpirun outside), ``tail`` and ``argv`` — so the
client is mpirun's child, and the container's output is the rank's.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any


def rank_variables(environ: Mapping[str, str]) -> dict[str, str]:
    """torch.distributed's names for this rank, from those Open MPI gives it (one node)."""
    rank = environ["OMPI_COMM_WORLD_RANK"]
    local = environ.get("OMPI_COMM_WORLD_LOCAL_RANK", rank)
    node = environ.get("OMPI_COMM_WORLD_NODE_RANK", "0")
    return {"RANK": rank, "LOCAL_RANK": local, "NODE_RANK": node, "GROUP_RANK": node}


#: the variables mpirun gives a rank that its container must see (by name: values stay off
#: the command line)
MPI_PREFIXES = ("OMPI_", "PMIX_", "OPAL_", "ORTE_")


def in_container(box: Mapping[str, Any], job: list[str], env: Mapping[str, str]) -> list[str]:
    """Docker's client command line that runs ``job`` as this rank in a container of its own."""
    head = [str(a) for a in box["head"]]
    tail = [str(a) for a in box["tail"]]
    rank = env["RANK"]
    mine = ["--name", f"{box['name']}{rank}", "--label", f"ferry.rank={rank}"]
    names = sorted(n for n in env if n.startswith(MPI_PREFIXES))
    names += sorted(rank_variables(env))
    for name in names:
        mine += ["--env", name]
    return head + mine + tail + job


def rank_log(logs: str, rank: int) -> str:
    return os.path.join(logs, f"std_log_rank_{rank}.txt")


def main(argv: list[str]) -> int:
    if len(argv) != 2 or "OMPI_COMM_WORLD_RANK" not in os.environ:
        sys.stderr.write("ferry: mpi_rank.py runs under mpirun: mpi_rank.py <command.json>\n")
        return 2
    with open(argv[1], encoding="utf-8") as fh:
        command = json.load(fh)
    job = [str(a) for a in command["argv"]]
    env = dict(os.environ)
    env.update(rank_variables(env))
    rank = int(env["RANK"])
    if command.get("container"):
        job = in_container(command["container"], job, env)
    if rank == 0:
        os.dup2(1, 2)  # one stream into the main log, in the order it was written
    else:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(rank_log(str(command["logs"]), rank), flags, 0o600)  # as the main log
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    try:
        os.execvpe(job[0], job, env)
    except OSError as exc:
        sys.stderr.write(f"ferry: cannot start {job[0]!r}: {exc.strerror}\n")
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv))
