"""MPI jobs on this machine: one real ``mpirun`` (Open MPI) under the job's watchdog.

The reference launches ``MpiConfiguration`` jobs (and ``communicator="OpenMpi"`` or
``"IntelMpi"``) with ``mpirun``; so does the local target. The job's watchdog starts *one*
process — ``mpirun -np N --bind-to none --oversubscribe python -I -S mpi_rank.py command.json``
— whose children are the ranks, so the watchdog's stop (cancel, time limit, the supervisor's
death) reaches every rank as it reaches any descendant. Each rank runs
:mod:`ferry.targets.mpi_rank`, which execs the job with its output in the rank's log (rank 0's is
the main log). The job's environment needs no ``-x``: on one node mpirun's children inherit its
whole environment. A script runs under ``python -m mpi4py`` when the job's Python has mpi4py
(:func:`rank_command`), so an uncaught error on one rank aborts them all instead of leaving the
others waiting. When a rank fails, mpirun stops the others and reports which one failed first;
:func:`group_exit` reads that report (or the ranks' logs) so the main log ends with that rank's
error.

Without Open MPI's ``mpirun`` an MPI job is refused at submit (:func:`find_open_mpi`): ranks
started without it would each be an MPI world of one, and the job would run wrong, silently.
Kinds that do not start mpirun refuse MPI jobs for the same reason
(:func:`refuse_where_mpirun_is_not_started`).

In a Docker run the same mpirun, on this machine, starts every rank in a container of its own
(:func:`ferry.targets.container.mpi_launch`, :func:`container_options`); the image holds the
same Open MPI series as this machine (ferry's default base image has Debian's).

Example::

    mpirun = find_open_mpi("local")                       # raises TargetRefused, with the fix
    command = write_command(run_dir, ["python", "train.py"], run_dir / "user_logs")
    argv = mpirun_argv(mpirun, plan, command, as_root=os.geteuid() == 0)
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferry.agent.files import write_json
from ferry.errors import TargetRefused
from ferry.spec import DistributedPlan, JobCommand, JobSpec
from ferry.targets.distributed import GroupExit

RANK_LAUNCHER = Path(__file__).resolve().parent / "mpi_rank.py"
COMMAND_FILE = "mpi_command.json"
INSTALL_HINT = "apt-get install openmpi-bin"

#: what Open MPI's launcher says of itself: "mpirun (Open MPI) 4.1.4", "orterun (OpenRTE) 4.1.4"
_OPEN_MPI = re.compile(r"\((?:Open MPI|OpenRTE)\)|open-mpi\.org")
#: mpirun's report of the rank that failed first: by exit code, by signal, by MPI_Abort
_EXITED = re.compile(r"Process name: \[\[\d+,\d+\],(\d+)\]\s*\n\s*Exit code:\s*(\d+)")
_SIGNALLED = re.compile(r"process rank (\d+) with PID \d+ on node \S+ exited on signal (\d+)")
_ABORTED = re.compile(
    r"MPI_ABORT was invoked on rank (\d+) in communicator \S+\s+with errorcode (\d+)"
)
_TRACEBACK = re.compile(r"^Traceback \(most recent call last\):$", re.MULTILINE)
#: exits 0 when the job's Python can import mpi4py (found, not imported: nothing starts MPI)
_HAS_MPI4PY = "import importlib.util, sys; sys.exit(importlib.util.find_spec('mpi4py') is None)"


@dataclass(frozen=True)
class OpenMpi:
    """Open MPI's launcher on this machine: its path and its version (``Open MPI 4.1.4``)."""

    path: str
    version: str


def find_open_mpi(target: str, run_id: str | None = None, path: str | None = None) -> OpenMpi:
    """Open MPI's ``mpirun`` on ``path`` (default ``PATH``), or TargetRefused saying how to
    install it. Debian's ``mpirun.openmpi`` comes first: it stays Open MPI when the ``mpirun``
    alternative points at another MPI."""
    found = shutil.which("mpirun.openmpi", path=path) or shutil.which("mpirun", path=path)
    if found is None:
        raise TargetRefused(
            f"compute target {target!r} cannot start MPI jobs: there is no mpirun on this "
            f"machine's PATH; install Open MPI (as root: {INSTALL_HINT}) — without it every "
            "rank would run alone, as an MPI world of one",
            run_id=run_id,
            target=target,
        )
    try:
        said = subprocess.run(
            [found, "--version"], capture_output=True, timeout=20, check=False
        ).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired) as exc:
        said = f"({exc})"
    first = next((line.strip() for line in said.splitlines() if line.strip()), "")
    if not _OPEN_MPI.search(said):
        raise TargetRefused(
            f"compute target {target!r} starts MPI jobs with Open MPI's mpirun, and {found} is "
            f"another one ({first or 'it did not say what it is'}); install Open MPI "
            f"({INSTALL_HINT}) or put its bin folder first on PATH",
            run_id=run_id,
            target=target,
        )
    number = re.search(r"\d+(?:\.\d+)+", first)
    return OpenMpi(found, f"Open MPI {number.group(0) if number else '(version unknown)'}")


def rank_command(command: JobCommand, python: str, env: Mapping[str, str]) -> tuple[list[str], str]:
    """Each rank's command line, and ferry's line about it for the main log.

    A script runs as ``python -m mpi4py script …`` when the job's Python has mpi4py (its
    authors' advice): an uncaught exception or ``sys.exit(n)`` on one rank then aborts every
    rank (``MPI_Abort``) — otherwise that rank waits in ``MPI_Finalize`` for ranks that never
    get there, and the run hangs until its time limit.
    """
    argv = command.argv(python)
    if command.kind != "script":
        return argv, ""
    return under_mpi4py(argv, _has_mpi4py(python, env))


def under_mpi4py(argv: list[str], has_mpi4py: bool) -> tuple[list[str], str]:
    """A script's command line (``[python, script, …]``) run by mpi4py's runner when the job's
    Python has it, and ferry's line about it."""
    if not has_mpi4py:
        return argv, (
            "ferry: mpi4py is not in the job's environment, so the script runs as given; a rank "
            "that fails without calling MPI_Abort may leave the others waiting\n"
        )
    return [argv[0], "-m", "mpi4py", *argv[1:]], (
        "ferry: the script runs as `python -m mpi4py`: an uncaught error on one rank aborts "
        "them all\n"
    )


def _has_mpi4py(python: str, env: Mapping[str, str]) -> bool:
    try:
        probe = subprocess.run(
            [python, "-c", _HAS_MPI4PY], env=dict(env), capture_output=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def refuse_where_mpirun_is_not_started(target: str, kind: str, job: JobSpec) -> None:
    """For target kinds that do not start ``mpirun`` (yet): refuse an MPI job at submit rather
    than run each rank as an MPI world of one. Their ``check_job`` calls this."""
    if job.distributed is None or job.distributed.kind != "mpi":
        return
    raise TargetRefused(
        f"compute target {target!r} ({kind}) cannot start MPI jobs: ferry starts their ranks "
        "with Open MPI's mpirun on the local target (compute_target='local', one machine); "
        f"on {kind}, use PyTorchConfiguration(communication_backend='Gloo', process_count=…) "
        "for torch.distributed",
        run_id=job.run_id,
        target=target,
    )


def write_command(
    run_dir: Path, argv: list[str], logs: Path, container: Mapping[str, Any] | None = None
) -> Path:
    """The job's command line and the rank logs' folder, for :mod:`~ferry.targets.mpi_rank`
    (and, for ranks in containers, Docker's command line around it)."""
    path = run_dir / COMMAND_FILE
    command: dict[str, Any] = {"argv": argv, "logs": str(logs)}
    if container is not None:
        command["container"] = dict(container)
    write_json(str(path), command)
    return path


def container_options(session_dir: Path) -> list[str]:
    """mpirun's options when its ranks run in containers (each in its own file system and
    ``/dev/shm``): Open MPI's session folder — where PMIx keeps what the ranks read at
    ``MPI_Init`` — and the shared-memory transport's files go to ``session_dir``, which every
    rank's container mounts at the same path; the single-copy path (CMA's
    ``process_vm_readv``, which the kernel refuses between containers) is off, so messages go
    through those shared files instead of failing with "Read -1, expected …, errno = 1"."""
    folder = str(session_dir)
    return ["--mca", "orte_tmpdir_base", folder, "--mca", "btl_vader_backing_directory", folder,
            "--mca", "btl_vader_single_copy_mechanism", "none"]  # fmt: skip


def series(version: str) -> str | None:
    """``4.1`` of ``Open MPI 4.1.4`` (or of ``Open MPI v4.1.4``): what must match between
    the mpirun outside and the library inside a rank's container; None when it says none."""
    found = re.search(r"(\d+)\.(\d+)", version)
    return f"{found.group(1)}.{found.group(2)}" if found else None


def mpirun_options(mpirun: OpenMpi, plan: DistributedPlan, *, as_root: bool) -> list[str]:
    """``mpirun`` and its options for ``plan`` on this machine.

    ``--oversubscribe`` always: it only allows more ranks than Open MPI counts cores (it counts
    physical cores, which can be fewer than ``os.cpu_count()``), and Open MPI switches to its
    yielding mode only when the ranks really outnumber them. ``--bind-to none``: ranks that
    start threads (torch, numpy) are not pinned to one core each.
    """
    argv = [mpirun.path, "-np", str(plan.world_size), "--bind-to", "none", "--oversubscribe"]
    return [*argv, "--allow-run-as-root"] if as_root else argv


def mpirun_argv(
    mpirun: OpenMpi,
    plan: DistributedPlan,
    command: Path,
    *,
    as_root: bool,
    python: str = sys.executable,
    options: Sequence[str] = (),
) -> list[str]:
    """The one command line the watchdog starts for an MPI job on this machine; the job's own
    command line is in ``command`` (see :func:`write_command`); ``options`` are mpirun's more
    (:func:`container_options`)."""
    launcher = [python, "-I", "-S", str(RANK_LAUNCHER), str(command)]
    return [*mpirun_options(mpirun, plan, as_root=as_root), *options, *launcher]


def describe(mpirun: OpenMpi, plan: DistributedPlan, *, as_root: bool) -> str:
    """ferry's line at the top of the main log: which MPI starts the ranks, and how."""
    launch = shlex.join(mpirun_options(mpirun, plan, as_root=as_root))
    return f"ferry: {plan.describe()} with {mpirun.version}: {launch}\n"


def group_exit(code: int, logs: Path, world_size: int) -> GroupExit | None:
    """The rank that failed first and how: from mpirun's report at the end of the main log (an
    exit code, a signal, or an ``MPI_Abort``), else the first rank whose log ends with a Python
    traceback — Open MPI 4.1 sometimes loses the report of an ``MPI_Abort`` (its
    ``show_help.c`` "Data unpack would read past end of buffer"). None when neither says (the
    job succeeded, or mpirun failed before the ranks started)."""
    if code == 0:
        return None
    text = _tail(logs / "std_log.txt")
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
        if _TRACEBACK.search(_tail(logs / f"std_log_rank_{rank}.txt")):
            return GroupExit(code, rank, {rank: code})
    return None


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - 65536))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
