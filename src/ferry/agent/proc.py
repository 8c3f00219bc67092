"""Processes on Linux: liveness, exit codes, a job's whole tree of descendants, and kills.

A job may leave its process group (``setsid``, ``setpgid``, a double-forked daemon), so a run's
processes are found by ancestry, not by group: the job's watchdog is a *child subreaper*
(``PR_SET_CHILD_SUBREAPER``), so orphaned descendants are re-parented to it instead of to init and
stay in its tree, where :func:`descendants` finds them by walking ``/proc``. Standard library only.

Example::

    set_child_subreaper()
    ...
    stop_tree(os.getpid(), grace=10.0, reap=reap_children)   # TERM, then KILL what is left
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _load_prctl() -> Callable[..., int] | None:
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# loaded up front: a pre-exec hook must not import (another thread may hold the import lock)
_PRCTL = _load_prctl()


def parent_death_signal(signum: int) -> None:
    """``signum`` reaches this process when its parent dies. Imports nothing, so it is safe in
    a pre-exec hook beside other threads."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signum)


def die_with_parent() -> None:
    """A pre-exec hook: the child is killed when the process that started it dies."""
    parent_death_signal(signal.SIGKILL)


def set_child_subreaper() -> bool:
    """Orphaned descendants of this process are re-parented to it (Linux ≥ 3.4)."""
    return _PRCTL is not None and _PRCTL(PR_SET_CHILD_SUBREAPER, 1) == 0


def exit_code(status: int) -> int:
    """Like subprocess: the exit status, or minus the signal that killed the process."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs on this machine (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    state = _stat_fields(pid)
    return state is None or state[0] != "Z"


def group_alive(pgid: int) -> bool:
    """True while any process of the group ``pgid`` exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def signal_pid(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22): with
    the pid, it names one process for good (a reused pid has another start time)."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20:
        return None
    try:
        return int(fields[19])
    except ValueError:
        return None


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3… of ``/proc/PID/stat`` (state first), or None when unreadable."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    return data.rsplit(b")", 1)[-1].decode("ascii", "replace").split()


def _parents() -> dict[int, int]:
    """pid → parent pid of every live (non-zombie) process visible in /proc."""
    out: dict[int, int] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return out
    for name in names:
        if not name.isdigit():
            continue
        fields = _stat_fields(int(name))
        if fields is None or len(fields) < 2 or fields[0] == "Z":
            continue
        try:
            out[int(name)] = int(fields[1])
        except ValueError:
            continue
    return out


def descendants(root: int) -> list[int]:
    """Every live descendant of ``root`` (not ``root`` itself), parents before children."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _parents().items():
        children.setdefault(ppid, []).append(pid)
    out: list[int] = []
    queue = list(children.get(root, ()))
    seen: set[int] = set()
    while queue:
        pid = queue.pop(0)
        if pid in seen:
            continue
        seen.add(pid)
        out.append(pid)
        queue.extend(children.get(pid, ()))
    return out


def reap_children() -> dict[int, int]:
    """Reap every exited child without blocking; returns pid → wait status."""
    reaped: dict[int, int] = {}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped[pid] = status


def stop_tree(
    root: int,
    grace: float,
    reap: Callable[[], object] | None = None,
    groups: list[int] = (),  # type: ignore[assignment]
) -> None:
    """Stop every descendant of ``root``: SIGTERM (to each process and to ``groups``), wait up
    to ``grace`` seconds, then freeze what is left with SIGSTOP and SIGKILL it, until nothing is
    left. ``reap`` is called while waiting (a subreaper must reap its adopted orphans)."""
    for pgid in groups:
        signal_group(pgid, signal.SIGTERM)
    for pid in descendants(root):
        signal_pid(pid, signal.SIGTERM)
        signal_pid(pid, signal.SIGCONT)  # a stopped process cannot act on TERM
    deadline = time.monotonic() + max(0.0, grace)
    while time.monotonic() < deadline:
        if reap is not None:
            reap()
        if not descendants(root):
            return
        time.sleep(0.02)
    kill_tree(root, reap, groups)


def kill_tree(
    root: int,
    reap: Callable[[], object] | None = None,
    groups: list[int] = (),  # type: ignore[assignment]
) -> None:
    """SIGKILL every descendant of ``root`` at once; processes forked meanwhile are frozen
    (SIGSTOP) and killed on the next pass, until none is left."""
    for pgid in groups:
        signal_group(pgid, signal.SIGKILL)
    for _ in range(200):
        left = descendants(root)
        if not left:
            return
        for pid in left:
            signal_pid(pid, signal.SIGSTOP)
        for pid in descendants(root):
            signal_pid(pid, signal.SIGKILL)
        if reap is not None:
            reap()
        time.sleep(0.01)
