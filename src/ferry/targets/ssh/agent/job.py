"""The remote job and its watchdog: started detached, stopped by cancel, lease or exit.

:func:`launch` double-forks a watchdog into its own session (so it outlives the SSH channel and
the agent), which forks the job into yet another session: the job's process group is its pid.
The job's stdout and stderr are appended to the run's log. The watchdog then

* reaps the job (a pidfd where the kernel has them, else a 50 ms poll),
* stops it (TERM, KILL after the grace) when ``cancel`` appears or when the ``lease`` file has
  not been touched for ``lease`` seconds — the agent touches it on every request of the
  supervisor following the run, so a dead or disconnected supervisor means a dead job,
* after the job's exit, stops what it left behind in its group, and writes ``exit.json``
  atomically: ``{"code": …, "reason": "exit"|"cancel"|"lease", "outputs": bool}``.
"""

from __future__ import annotations

import json
import os
import select  # imported before any fork: a forked child must not import
import signal
import time
from typing import Any

LOG_NAME = "user_logs/std_log.txt"


def write_json(path: str, data: object) -> None:
    """Replace ``path`` atomically (temp file + rename), so readers never see half of it."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def exit_code(status: int) -> int:
    """Like subprocess: the exit status, or minus the signal that killed the process."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def group_alive(pgid: int) -> bool:
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


def launch(run_dir: str, req: dict[str, Any]) -> dict[str, Any]:
    """Start the job under a detached watchdog; returns ``{"pid": …}`` (= its process group)."""
    wd = os.path.join(run_dir, "wd")
    for folder in ("wd/outputs", "wd/logs", "user_logs", "spool"):
        os.makedirs(os.path.join(run_dir, folder), exist_ok=True)
    for stale in ("exit.json", "cancel", "job.json"):
        if os.path.exists(os.path.join(run_dir, stale)):
            os.unlink(os.path.join(run_dir, stale))
    with open(os.path.join(run_dir, "lease"), "w"):
        pass
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in (req.get("set") or {}).items()})
    for key, value in (req.get("prepend") or {}).items():
        env[key] = value + (os.pathsep + env[key] if env.get(key) else "")
    for key in req.get("unset") or []:
        env.pop(key, None)
    argv = [str(a) for a in req["argv"]]
    lease, grace = float(req["lease"]), float(req["grace"])
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked child
        try:
            os.close(read_end)
            os.setsid()
            if os.fork() == 0:
                watchdog(run_dir, wd, argv, env, lease, grace, write_end)
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    chunks = []
    while True:
        data = os.read(read_end, 65536)
        if not data:
            break
        chunks.append(data)
    os.close(read_end)
    status: dict[str, Any] = json.loads(b"".join(chunks) or b'{"error": "no watchdog"}')
    if "error" in status:
        raise RuntimeError(status["error"])
    return status


def watchdog(
    run_dir: str,
    wd: str,
    argv: list[str],
    env: dict[str, str],
    lease: float,
    grace: float,
    status_fd: int,
) -> None:
    """Start the job, report its pid (or why it could not start) on ``status_fd``, mind it."""
    devnull = os.open(os.devnull, os.O_RDWR)
    append = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    errors = os.open(os.path.join(run_dir, "watchdog.log"), append, 0o644)
    log_fd = os.open(os.path.join(run_dir, LOG_NAME), append, 0o644)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(errors, 2)
    exec_read, exec_write = os.pipe()  # close-on-exec: EOF without a message means exec worked
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            os.chdir(wd)
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            for name in ("SIGPIPE", "SIGXFSZ"):  # Python ignores these; the job should not
                if hasattr(signal, name):
                    signal.signal(getattr(signal, name), signal.SIG_DFL)
            os.execvpe(argv[0], argv, env)
        except OSError as exc:
            os.write(exec_write, (f"cannot start {argv[0]!r}: {exc.strerror}").encode())
        finally:
            os._exit(127)
    os.close(exec_write)
    failure = os.read(exec_read, 4096).decode("utf-8", "replace")
    os.close(exec_read)
    if failure:
        os.write(log_fd, (f"ferry: {failure}\n").encode())
    os.write(status_fd, json.dumps({"error": failure} if failure else {"pid": pid}).encode())
    os.close(status_fd)
    write_json(os.path.join(run_dir, "job.json"), {"pid": pid, "watchdog": os.getpid()})
    status, reason = _mind(run_dir, pid, lease, grace, log_fd)
    if group_alive(pid):  # processes the job left behind go with it
        signal_group(pid, signal.SIGTERM)
        deadline = time.time() + min(grace, 5.0)
        while group_alive(pid) and time.time() < deadline:
            time.sleep(0.05)
        signal_group(pid, signal.SIGKILL)
    outputs = os.path.join(wd, "outputs")
    has_outputs = os.path.isdir(outputs) and bool(os.listdir(outputs))
    write_json(
        os.path.join(run_dir, "exit.json"),
        {"code": exit_code(status), "reason": reason, "outputs": has_outputs},
    )


def _mind(run_dir: str, pid: int, lease: float, grace: float, log_fd: int) -> tuple[int, str]:
    """Wait for the job, stopping it on cancel or an expired lease; returns (status, reason)."""
    pidfd = None
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            pidfd = None
    lease_path = os.path.join(run_dir, "lease")
    cancel_path = os.path.join(run_dir, "cancel")
    reason = "exit"
    kill_at: float | None = None
    while True:
        if pidfd is not None:
            select.select([pidfd], [], [], 0.1)
        else:
            time.sleep(0.05)
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            if reason == "exit" and os.path.exists(cancel_path):
                reason = "cancel"  # the agent's TERM got there first
            return status, reason
        now = time.time()
        if kill_at is not None:
            if now >= kill_at:
                signal_group(pid, signal.SIGKILL)
            continue
        if os.path.exists(cancel_path):
            reason, kill_at = "cancel", now + _grace(cancel_path, grace)
            signal_group(pid, signal.SIGTERM)
            continue
        try:
            age = now - os.stat(lease_path).st_mtime
        except OSError:
            age = lease + 1.0
        if age > lease:
            reason, kill_at = "lease", now + grace
            note = (
                f"\nferry: the supervisor following this run has been gone for {age:.0f} s (lease "
                f"{lease:.0f} s); the remote watchdog stops the job\n"
            )
            os.write(log_fd, note.encode())
            signal_group(pid, signal.SIGTERM)


def _grace(cancel_path: str, default: float) -> float:
    try:
        with open(cancel_path, encoding="utf-8") as fh:
            return float(fh.read())
    except (OSError, ValueError):
        return default


def kill(run_dir: str, grace: float, now: bool = False) -> bool:
    """TERM the job's group at once; the watchdog sends KILL after ``grace`` seconds."""
    try:
        with open(os.path.join(run_dir, "job.json"), encoding="utf-8") as fh:
            pid = int(json.load(fh)["pid"])
    except (OSError, ValueError, KeyError):
        return False
    with open(os.path.join(run_dir, "cancel"), "w", encoding="utf-8") as fh:
        fh.write(str(grace))
    signal_group(pid, signal.SIGTERM)
    if now:
        signal_group(pid, signal.SIGKILL)
    return True
