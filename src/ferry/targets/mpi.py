"""MPI jobs: one real ``mpirun`` (Open MPI) under the job's watchdog, where the ranks run.

The reference launches ``MpiConfiguration`` jobs (and ``communicator="OpenMpi"`` or
``"IntelMpi"``) with ``mpirun``; so do the local target (on this machine) and the SSH target (on
its host, through the agent). The job's watchdog starts *one* process — ``mpirun -np N
--bind-to none --oversubscribe python -I -S mpi_rank.py mpi_command.json`` — whose children are
the ranks, so the watchdog's stop (cancel, time limit, the supervisor's death) reaches every
rank as it reaches any descendant. Each rank runs :mod:`ferry.agent.mpi_rank` (shipped to SSH
hosts in the agent's package), which execs the job with its output in the rank's log (rank 0's
is the main log). The job's environment needs no ``-x``: on one node mpirun's children inherit
its whole environment. A script runs under ``python -m mpi4py`` when the job's Python has
mpi4py, so an uncaught error on one rank aborts them all instead of leaving the others waiting.
The command line is built where the ranks run, by :func:`ferry.agent.mpirun.launch` from
:func:`launch_spec`. When a rank fails, mpirun stops the others and reports which one failed
first; :func:`group_exit` reads that report (or the ranks' logs) so the main log ends with that
rank's error.

Without Open MPI's ``mpirun`` an MPI job is refused before anything runs (:func:`judge` of what
:func:`ferry.agent.mpirun.locate` found: at submit here, when the run prepares on a host): ranks
started without it would each be an MPI world of one, and the job would run wrong, silently.
Kinds that do not start mpirun refuse MPI jobs for the same reason
(:func:`refuse_where_mpirun_is_not_started`).

In a Docker run the same mpirun starts every rank in a container of its own
(:func:`ferry.targets.container.mpi_launch`, :func:`container_options`); the image holds the
same Open MPI series as that mpirun (ferry's default base image has Debian's).

Example::

    mpirun = find_open_mpi("local")                       # raises TargetRefused, with the fix
    spec = launch_spec(job, mpirun, ["python", "train.py"], str(job.run_dir))
    argv, first_line = ferry.agent.mpirun.launch(spec, job_env)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferry.agent import mpirun as agent_mpirun
from ferry.agent.mpirun import COMMAND_FILE, RANK_LAUNCHER, under_mpi4py
from ferry.errors import TargetRefused
from ferry.spec import DistributedPlan, JobSpec
from ferry.targets import distributed
from ferry.targets.distributed import GroupExit
from ferry.targets.watched import JobProcess

__all__ = ["COMMAND_FILE", "RANK_LAUNCHER", "under_mpi4py"]

INSTALL_HINT = "apt-get install openmpi-bin"

#: mpirun's report of the rank that failed first: by exit code, by signal, by MPI_Abort
_EXITED = re.compile(r"Process name: \[\[\d+,\d+\],(\d+)\]\s*\n\s*Exit code:\s*(\d+)")
_SIGNALLED = re.compile(r"process rank (\d+) with PID \d+ on node \S+ exited on signal (\d+)")
_ABORTED = re.compile(
    r"MPI_ABORT was invoked on rank (\d+) in communicator \S+\s+with errorcode (\d+)"
)
_TRACEBACK = re.compile(r"^Traceback \(most recent call last\):$", re.MULTILINE)


@dataclass(frozen=True)
class OpenMpi:
    """Open MPI's launcher where the ranks run: its path and its version (``Open MPI 4.1.4``)."""

    path: str
    version: str


def find_open_mpi(target: str, run_id: str | None = None, path: str | None = None) -> OpenMpi:
    """Open MPI's ``mpirun`` on this machine's ``path`` (default ``PATH``), or TargetRefused
    saying how to install it."""
    return judge(agent_mpirun.locate("", path), target, "this machine", run_id)


def judge(found: Mapping[str, Any], target: str, where: str, run_id: str | None) -> OpenMpi:
    """What :func:`ferry.agent.mpirun.locate` found ``where`` (``this machine``, ``host
    me@vm:22``) as an :class:`OpenMpi`; TargetRefused naming the place and the fix when it
    found nothing, or another MPI's launcher."""
    path = found.get("path")
    if not path:
        named = found.get("asked")
        what = f"no mpirun at {named} on {where}" if named else f"no mpirun on {where}'s PATH"
        raise TargetRefused(
            f"compute target {target!r} cannot start MPI jobs: there is {what}; install Open "
            f"MPI there (as root: {INSTALL_HINT}) — without it every rank would run alone, as "
            "an MPI world of one",
            run_id=run_id,
            target=target,
        )
    if not found.get("open_mpi"):
        said = found.get("first") or "it did not say what it is"
        raise TargetRefused(
            f"compute target {target!r} starts MPI jobs with Open MPI's mpirun, and {path} on "
            f"{where} is another one ({said}); install Open MPI ({INSTALL_HINT}) or put its "
            "bin folder first on PATH",
            run_id=run_id,
            target=target,
        )
    return OpenMpi(str(path), str(found.get("version") or "Open MPI (version unknown)"))


def launch_spec(
    job: JobSpec, mpirun: OpenMpi, argv: list[str], run_dir: str, **more: Any
) -> dict[str, Any]:
    """What :func:`ferry.agent.mpirun.launch` needs to start ``job``'s ranks with ``mpirun``
    where they run (``run_dir`` there; ``more``: ``mpi4py``, ``container``, ``session``,
    ``image``)."""
    plan = job.distributed
    assert plan is not None and plan.kind == "mpi"
    spec: dict[str, Any] = {
        "mpirun": mpirun.path, "version": mpirun.version, "what": plan.describe(),
        "world_size": plan.world_size, "argv": list(argv),
        "script": job.command.kind == "script", "mpi4py": None,
        "run_dir": run_dir, "logs": f"{run_dir}/user_logs",
    }  # fmt: skip
    spec.update(more)
    return spec


def launch_here(
    job: JobSpec,
    mpirun: OpenMpi,
    argv: list[str],
    env: dict[str, str],
    first_line: str | None = None,
) -> JobProcess:
    """The local target's one process for every rank: this machine's mpirun, the ranks'
    common variables inherited, a script under mpi4py's runner when the job's Python (asked
    with ``env``) has it; ``first_line`` follows ferry's own lines at the top of the log."""
    assert job.distributed is not None
    spec = launch_spec(job, mpirun, argv, str(job.run_dir), logs=str(job.log_path.parent))
    launched, first = agent_mpirun.launch(spec, env)
    shared = distributed.shared_environment(job.distributed, "127.0.0.1", distributed.free_port())
    return JobProcess(0, launched, {**env, **shared}, str(job.log_path), first + (first_line or ""))


def refuse_where_mpirun_is_not_started(target: str, kind: str, job: JobSpec) -> None:
    """For target kinds that do not start ``mpirun``: refuse an MPI job at submit rather than
    run each rank as an MPI world of one. Their ``check_job`` calls this."""
    if job.distributed is None or job.distributed.kind != "mpi":
        return
    raise TargetRefused(
        f"compute target {target!r} ({kind}) cannot start MPI jobs: ferry starts their ranks "
        "with Open MPI's mpirun on one machine, on the local target (compute_target='local') "
        f"or an ssh target; on {kind}, use PyTorchConfiguration(communication_backend='Gloo', "
        "process_count=…) for torch.distributed",
        run_id=job.run_id,
        target=target,
    )


def container_options(session_dir: Path | str) -> list[str]:
    """mpirun's options when its ranks run in containers (:func:`ferry.agent.mpirun.
    container_options`)."""
    return agent_mpirun.container_options(str(session_dir))


def series(version: str) -> str | None:
    """``4.1`` of ``Open MPI 4.1.4`` (or of ``Open MPI v4.1.4``): what must match between
    the mpirun outside and the library inside a rank's container; None when it says none."""
    found = re.search(r"(\d+)\.(\d+)", version)
    return f"{found.group(1)}.{found.group(2)}" if found else None


def mpirun_argv(
    mpirun: OpenMpi,
    plan: DistributedPlan,
    command: Path,
    *,
    as_root: bool,
    python: str = "",
) -> list[str]:
    """The one command line the watchdog starts for an MPI job on this machine (the job's own
    command line is in ``command``: :func:`ferry.agent.mpirun.write_command`)."""
    return agent_mpirun.mpirun_argv(
        mpirun.path, plan.world_size, str(command), as_root, *([python] if python else [])
    )  # fmt: skip


def group_exit(code: int, logs: Path, world_size: int) -> GroupExit | None:
    """The rank that failed first and how: from mpirun's report at the end of the main log (an
    exit code, a signal, or an ``MPI_Abort``), else the first rank whose log ends with a Python
    traceback — Open MPI 4.1 sometimes loses the report of an ``MPI_Abort`` (its
    ``show_help.c`` "Data unpack would read past end of buffer"). None when neither says (the
    job succeeded, or mpirun failed before the ranks started)."""
    if code == 0:
        return None
    text = tail(logs / "std_log.txt")
    reports = [
        (m.start(), int(m.group(1)), int(m.group(2)))
        for pattern in (_EXITED, _ABORTED)
        for m in pattern.finditer(text)
    ]
    reports += [(m.start(), int(m.group(1)), -int(m.group(2))) for m in _SIGNALLED.finditer(text)]
    if reports:
        _, rank, rank_code = max(reports)
        return GroupExit(rank_code, rank, {rank: rank_code})
    for rank in range(1, world_size):
        if _TRACEBACK.search(tail(logs / f"std_log_rank_{rank}.txt")):
            return GroupExit(code, rank, {rank: code})
    return None


def tail(path: Path) -> str:
    """The last 64 KiB of a log ("" when it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - 65536))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
