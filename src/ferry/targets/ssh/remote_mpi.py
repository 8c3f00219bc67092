"""MPI jobs on an SSH host: the host's Open MPI ``mpirun`` starts the ranks, under the watchdog.

As on the local target (:mod:`ferry.targets.mpi`), the job is *one* process on the host —
``mpirun … python -I -S mpi_rank.py mpi_command.json`` — whose children are the ranks, so the
watchdog's stop (cancel, time limit, the lease of a supervisor that left) reaches them all.
The launcher is found by the agent on the host (:func:`ferry.agent.mpirun.locate`: the target's
``mpirun`` setting, else ``mpirun.openmpi`` or ``mpirun`` on the host's PATH) while the run
prepares, before anything is sent there; a host without Open MPI refuses the run with the fix,
naming the host (:func:`ferry.targets.mpi.judge`). The command line is made on the host too
(:func:`ferry.agent.mpirun.launch`, with the rank launcher shipped in the agent's package and
the job's Python asked there for mpi4py). Rank N's log (``user_logs/std_log_rank_N.txt``)
streams back beside the main one; when a rank fails, mpirun's report in the main log names it
and :func:`failed_rank_note` repeats its error at the end, as the local target does.

Example::

    run.mpirun = await check_host(run)                   # TargetRefused without Open MPI
    ranks = plain_ranks(run, argv, port)                 # the launch request's one "rank"
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry.targets import distributed, mpi

if TYPE_CHECKING:
    from ferry.targets.ssh.remote_run import RemoteRun


def wants_mpirun(run: RemoteRun) -> bool:
    plan = run.job.distributed
    return plan is not None and plan.kind == "mpi"


async def check_host(run: RemoteRun) -> mpi.OpenMpi:
    """Open MPI's mpirun on the host, or TargetRefused saying how to install it there."""
    found = await run.call("mpi_check", mpirun=run.settings.mpirun)
    return mpi.judge(found, run.name, f"host {run.settings.where}", run.job.run_id)


def plain_ranks(run: RemoteRun, argv: list[str], port: int) -> list[dict[str, Any]]:
    """The launch request's ranks for a plain MPI job: one, mpirun (made on the host from
    ``mpi``), with the variables every rank sees alike."""
    assert run.mpirun is not None and run.job.distributed is not None
    shared = distributed.shared_environment(run.job.distributed, "127.0.0.1", port)
    spec = mpi.launch_spec(run.job, run.mpirun, argv, run.run_dir)
    return [{"rank": 0, "set": shared, "argv": ["mpirun"], "mpi": spec}]


def failed_rank_note(code: int, logs: Path, world_size: int) -> tuple[int, str | None]:
    """The run's exit code and, when a rank other than 0 failed first, the lines that repeat
    its error at the end of the main log (``logs``: the local copies of the ranks' logs)."""
    ended = mpi.group_exit(code, logs, world_size)
    if ended is None:
        return code, None
    failed = ended.failed_rank
    if failed is None or failed == 0:
        return ended.code, None
    text = mpi.tail(logs / f"std_log_rank_{failed}.txt")
    return ended.code, distributed.failure_note(failed, ended.code, text)
