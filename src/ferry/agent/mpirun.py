"""Open MPI's ``mpirun`` on the machine that runs a job's ranks: found, and its command line.

The local target and the SSH agent share this (standard library only, Python 3.8+): an MPI job
is *one* process under the job's watchdog —
``mpirun -np N --bind-to none --oversubscribe python -I -S mpi_rank.py mpi_command.json`` —
whose children are the ranks, so the watchdog's stop (cancel, time limit, a supervisor gone)
reaches every rank as it reaches any descendant. :func:`locate` finds the launcher and says what
it is (the library judges it: :func:`ferry.targets.mpi.judge`, which refuses another MPI or none
with the fix); :func:`launch` writes the job's command line for :mod:`.mpi_rank` and returns
mpirun's, with ferry's first line of the main log. Both run where the ranks run: in the
supervisor's process for the local target, in the agent on an SSH host.

``spec`` of :func:`launch` (built by the library: :func:`ferry.targets.mpi.launch_spec`)::

    {"mpirun": "/usr/bin/mpirun.openmpi", "version": "Open MPI 4.1.4",
     "what": "MPI, 1 node × 2 processes", "world_size": 2,
     "argv": ["/env/bin/python", "train.py", "--lr", "0.1"], "script": true,
     "mpi4py": null,            # null: asked of the job's Python here; true/false: known
     "run_dir": "…/runs/<id>", "logs": "…/runs/<id>/user_logs",
     "container": null,         # ranks in containers: {"head", "tail", "name"} (mpi_rank.py)
     "session": null,           # …and Open MPI's session folder every container mounts
     "image": null}             # …and their image, for the first line
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .files import write_json

RANK_LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mpi_rank.py")
COMMAND_FILE = "mpi_command.json"

#: what Open MPI's launcher says of itself: "mpirun (Open MPI) 4.1.4", "orterun (OpenRTE) 4.1.4"
OPEN_MPI = re.compile(r"\((?:Open MPI|OpenRTE)\)|open-mpi\.org")
#: exits 0 when the job's Python can import mpi4py (found, not imported: nothing starts MPI)
_HAS_MPI4PY = "import importlib.util, sys; sys.exit(importlib.util.find_spec('mpi4py') is None)"


def locate(mpirun: str = "", path: Optional[str] = None) -> Dict[str, Any]:
    """The launcher ``mpirun`` names (a path), else the one on ``path`` (default ``PATH``):
    ``{"path": …, "asked": mpirun, "open_mpi": bool, "first": its first line, "version":
    "Open MPI 4.1.4"}``;
    ``path`` is None when there is none. Debian's ``mpirun.openmpi`` comes first: it stays
    Open MPI when the ``mpirun`` alternative points at another MPI."""
    if mpirun:
        found = mpirun if os.path.isfile(mpirun) and os.access(mpirun, os.X_OK) else None
    else:
        found = shutil.which("mpirun.openmpi", path=path) or shutil.which("mpirun", path=path)
    if found is None:
        return {"path": None, "asked": mpirun, "open_mpi": False, "first": "", "version": ""}
    try:
        said = subprocess.run(
            [found, "--version"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            timeout=20, check=False,
        ).stdout.decode("utf-8", "replace")  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        said = "(%s)" % exc
    first = next((line.strip() for line in said.splitlines() if line.strip()), "")
    number = re.search(r"\d+(?:\.\d+)+", first)
    version = "Open MPI %s" % (number.group(0) if number else "(version unknown)")
    return {"path": found, "asked": mpirun, "open_mpi": bool(OPEN_MPI.search(said)),
            "first": first, "version": version}  # fmt: skip


def has_mpi4py(python: str, env: Mapping[str, str]) -> bool:
    """The job's Python (with the job's variables) can import mpi4py."""
    try:
        probe = subprocess.run(
            [python, "-c", _HAS_MPI4PY], env=dict(env), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def under_mpi4py(argv: List[str], found: bool) -> Tuple[List[str], str]:
    """A script's command line (``[python, script, …]``) run by mpi4py's runner when the job's
    Python has it, and ferry's line about it.

    Under ``python -m mpi4py`` (its authors' advice) an uncaught exception or ``sys.exit(n)``
    on one rank aborts every rank (``MPI_Abort``); otherwise that rank waits in
    ``MPI_Finalize`` for ranks that never get there, and the run hangs until its time limit.
    """
    if not found:
        return list(argv), (
            "ferry: mpi4py is not in the job's environment, so the script runs as given; a rank "
            "that fails without calling MPI_Abort may leave the others waiting\n"
        )
    return [argv[0], "-m", "mpi4py", *argv[1:]], (
        "ferry: the script runs as `python -m mpi4py`: an uncaught error on one rank aborts "
        "them all\n"
    )


def write_command(
    run_dir: str, argv: Sequence[str], logs: str, container: Optional[Mapping[str, Any]] = None
) -> str:
    """The job's command line and the rank logs' folder, for :mod:`.mpi_rank` (and, for ranks
    in containers, Docker's command line around it); returns the file's path."""
    path = os.path.join(run_dir, COMMAND_FILE)
    command: Dict[str, Any] = {"argv": [str(a) for a in argv], "logs": str(logs)}
    if container is not None:
        command["container"] = dict(container)
    write_json(path, command)
    return path


def mpirun_options(mpirun: str, world_size: int, as_root: bool) -> List[str]:
    """``mpirun`` and its options for ``world_size`` ranks on this machine.

    ``--oversubscribe`` always: it only allows more ranks than Open MPI counts cores (it counts
    physical cores, which can be fewer than ``os.cpu_count()``), and Open MPI switches to its
    yielding mode only when the ranks really outnumber them. ``--bind-to none``: ranks that
    start threads (torch, numpy) are not pinned to one core each.
    """
    argv = [mpirun, "-np", str(world_size), "--bind-to", "none", "--oversubscribe"]
    return [*argv, "--allow-run-as-root"] if as_root else argv


def container_options(session_dir: str) -> List[str]:
    """mpirun's options when its ranks run in containers (each in its own file system and
    ``/dev/shm``): Open MPI's session folder — where PMIx keeps what the ranks read at
    ``MPI_Init`` — and the shared-memory transport's files go to ``session_dir``, which every
    rank's container mounts at the same path; the single-copy path (CMA's
    ``process_vm_readv``, which the kernel refuses between containers) is off, so messages go
    through those shared files instead of failing with "Read -1, expected …, errno = 1"."""
    folder = str(session_dir)
    return ["--mca", "orte_tmpdir_base", folder, "--mca", "btl_vader_backing_directory", folder,
            "--mca", "btl_vader_single_copy_mechanism", "none"]  # fmt: skip


def mpirun_argv(
    mpirun: str,
    world_size: int,
    command: str,
    as_root: bool,
    python: str = sys.executable,
    options: Sequence[str] = (),
) -> List[str]:
    """The one command line the watchdog starts: mpirun, its ``options``, then every rank's
    launcher (``python -I -S mpi_rank.py command``: isolated, standard library only)."""
    launcher = [python, "-I", "-S", RANK_LAUNCHER, str(command)]
    return mpirun_options(mpirun, world_size, as_root) + list(options) + launcher


def launch(spec: Mapping[str, Any], env: Mapping[str, str]) -> Tuple[List[str], str]:
    """mpirun's command line for the job ``spec`` describes (see the module docstring), and
    ferry's first lines of the main log; writes the rank launcher's command file. ``env`` is
    the job's environment here (the job's Python is asked for mpi4py with it)."""
    argv = [str(a) for a in spec["argv"]]
    note = ""
    if spec.get("script"):
        found = spec.get("mpi4py")
        if found is None:
            found = has_mpi4py(argv[0], env)
        argv, note = under_mpi4py(argv, bool(found))
    options: List[str] = []
    if spec.get("session"):
        os.makedirs(str(spec["session"]), exist_ok=True)
        options = container_options(str(spec["session"]))
    command = write_command(str(spec["run_dir"]), argv, str(spec["logs"]), spec.get("container"))
    as_root = os.geteuid() == 0
    world = int(spec["world_size"])
    shown = shlex.join(mpirun_options(str(spec["mpirun"]), world, as_root))
    first = "ferry: %s with %s: %s" % (spec["what"], spec["version"], shown)
    if spec.get("container"):
        first += " (one container per rank, image %s)" % spec.get("image")
    launched = mpirun_argv(str(spec["mpirun"]), world, command, as_root, options=options)
    return launched, first + "\n" + note
