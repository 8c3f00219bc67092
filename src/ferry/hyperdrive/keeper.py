"""The sweep controller's processes: a keeper that restarts it, never a thread of the driver.

``launch_controller`` spawns the *keeper* (``python -m ferry.hyperdrive.keeper WS HD_…``) in its
own session, with none of the driver's descriptors, so the driver may exit and the sweep still
runs to its end. The keeper holds ``keeper.lock`` in the sweep's folder and runs the *controller*
(:mod:`ferry.hyperdrive.controller`) as its child:

- the controller exits 0 once the sweep has ended (whatever its status): the keeper exits too;
- it dies any other way (``kill -9``, a crash of the interpreter): the keeper starts a new one,
  which resumes from the run history (the children, their values and metrics are all there);
  after :func:`max_restarts` deaths the keeper ends the sweep ``Failed`` with the reason;
- the keeper dies: the controller notices (its parent changed) and launches a new keeper, whose
  controller waits on ``controller.lock`` until the running one ends — a standby, never two.

If both die (the machine rebooted), the next reader of the sweep (a ``HyperDriveRun`` handle)
finds ``controller.lock`` free and the heartbeat old and launches a keeper again; until then the
liveness rules (:mod:`ferry.liveness`) apply to the sweep run as to any run, so it is never left
``Running`` for ever. This module imports only the standard library until it must write.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

KEEPER_LOCK = "keeper.lock"
CONTROLLER_LOCK = "controller.lock"
LOG = "controller.log"
#: how many times a controller that died is started again before the sweep is failed
MAX_RESTARTS = 5


def max_restarts() -> int:
    """:data:`MAX_RESTARTS`, or ``FERRY_SWEEP_MAX_RESTARTS``."""
    try:
        return max(0, int(os.environ.get("FERRY_SWEEP_MAX_RESTARTS", MAX_RESTARTS)))
    except ValueError:
        return MAX_RESTARTS


_spawned: list[subprocess.Popen[bytes]] = []


def _spawn(args: list[str], cwd: Path, log_path: Path) -> subprocess.Popen[bytes]:
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        return subprocess.Popen(
            [sys.executable, *args],
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            cwd=str(cwd),
        )
    finally:
        os.close(fd)


def launch_controller(workspace_path: Path, runs_dir: Path, sweep_id: str) -> int:
    """Start the sweep's keeper, detached from this process; returns its pid."""
    run_dir = runs_dir / sweep_id
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _spawned[:] = [p for p in _spawned if p.poll() is None]  # a notebook reaps what it started
    process = _spawn(
        ["-m", "ferry.hyperdrive.keeper", str(workspace_path), sweep_id],
        workspace_path,
        run_dir / LOG,
    )
    _spawned.append(process)
    return process.pid


def lock(path: Path, wait: bool) -> int | None:
    """An exclusive ``flock`` on ``path`` held while the returned descriptor is open; None
    when another process holds it and ``wait`` is False."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except OSError:
        os.close(fd)
        return None
    return fd


def controller_running(run_dir: Path) -> bool:
    """True while some process holds the sweep's controller lock (on this machine)."""
    if not run_dir.is_dir():
        return False
    fd = lock(run_dir / CONTROLLER_LOCK, wait=False)
    if fd is None:
        return True
    os.close(fd)
    return False


def _say(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} keeper {os.getpid()}: {message}", flush=True)


def keep(workspace_path: str, sweep_id: str) -> int:
    """The keeper's life: run the controller until the sweep has ended."""
    ws_path = Path(workspace_path)
    run_dir = ws_path / "runs" / sweep_id
    held = lock(run_dir / KEEPER_LOCK, wait=False)
    if held is None:
        _say(f"sweep {sweep_id} already has a keeper; this one leaves")
        return 0
    deaths: list[str] = []
    try:
        while True:
            child = _spawn(
                ["-m", "ferry.hyperdrive.controller", workspace_path, sweep_id],
                ws_path,
                run_dir / LOG,
            )
            code = child.wait()
            if code == 0:
                return 0
            how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
            deaths.append(f"the sweep controller (pid {child.pid}) {how}")
            _say(deaths[-1])
            if len(deaths) > max_restarts():
                _fail(ws_path, sweep_id, deaths)
                return 1
            _say("starting a new controller; it resumes from the run history")
            time.sleep(min(0.1 * 2 ** len(deaths), 5.0))
    finally:
        os.close(held)


def _fail(ws_path: Path, sweep_id: str, deaths: list[str]) -> None:
    """Too many deaths: the sweep ends Failed with the reason; its running children stop."""
    from ferry.hyperdrive.lifecycle import end_sweep
    from ferry.status import RunStatus
    from ferry.workspace import Workspace

    reason = (
        f"{deaths[-1]}; it died {len(deaths)} times, so the sweep was stopped. See "
        f"{ws_path / 'runs' / sweep_id / LOG} for why."
    )
    error: dict[str, Any] = {"error": {"code": "ControllerLost", "message": reason}}
    end_sweep(Workspace(ws_path), sweep_id, RunStatus.FAILED, error)


if __name__ == "__main__":
    sys.exit(keep(sys.argv[1], sys.argv[2]))
