"""A job started by ferry's agent on an SSH host, under its watchdog, detached from the agent.

:func:`launch` starts :mod:`.watchdog` with ``detach`` (it forks into a session of its own, so
the job outlives the SSH channel and the agent) and these ways to stop the job:

* ``<run>/cancel`` — :func:`cancel` writes it (the grace in seconds); the watchdog stops every
  descendant of the job, also those that left its process group;
* ``<run>/lease`` — the agent touches it on every request of the supervisor following the run;
  when nobody has touched it for the lease, the supervisor is gone and so is the job;
* the job's end — what it left behind is stopped with it.

The run folder on the host::

    runs/<run-id>/wd/                 the snapshot's copy, the job's working folder
    runs/<run-id>/user_logs/          std_log.txt (capped; rank logs beside it)
    runs/<run-id>/spool/              the runtime's records and uploaded files
    runs/<run-id>/lease, cancel       the lifelines above
    runs/<run-id>/job.json            the watchdog's pid and start time (to tell it is alive)
    runs/<run-id>/exit.json           the watchdog's result, written last

Example::

    status = launch(run_dir, {"argv": ["python3", "job.py"], "set": {...}, "lease": 30,
                              "grace": 10})
    cancel(run_dir, grace=10)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, Dict, List

from . import files, logcap, mpirun, proc
from .environ import apply_request

LOG_NAME = "user_logs/std_log.txt"
WATCHDOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "watchdog.py")


def rank_log(rank: int) -> str:
    """Rank 0 writes the main log; every other rank a log of its own beside it."""
    return LOG_NAME if rank == 0 else "user_logs/std_log_rank_%d.txt" % rank


def launch(run_dir: str, req: Dict[str, Any]) -> Dict[str, Any]:
    """Start the job's ranks under a detached watchdog; returns ``{"pid": <watchdog>, "pgid"}``.

    ``req``: ``argv``; the environment request (``set``, ``prepend``, ``unset``, applied to
    the agent's own environment); ``lease`` and ``grace`` in seconds; optionally ``ranks``
    (``[{"rank": 1, "set": {...}}, …]``: one process each, with those variables too; a rank of
    a Docker run has its own ``argv``, Docker's client, and ``container``: ``{"engine",
    "name"}`` for the watchdog to stop it through the engine; an MPI job's one process has
    ``mpi``, what :func:`.mpirun.launch` makes the host's mpirun command line of),
    ``watch`` (job folders to create) and ``log_max_bytes``.
    """
    wd = os.path.join(run_dir, "wd")
    for folder in ["wd/outputs", "user_logs", "spool"] + [
        "wd/" + str(w) for w in req.get("watch") or ["logs"]
    ]:
        os.makedirs(os.path.join(run_dir, folder), exist_ok=True)
    for stale in ("exit.json", "cancel", "job.json"):
        if os.path.exists(os.path.join(run_dir, stale)):
            os.unlink(os.path.join(run_dir, stale))
    lease = os.path.join(run_dir, "lease")
    with open(lease, "w"):
        pass
    env = apply_request(os.environ, req)
    argv = [str(a) for a in req["argv"]]
    ranks: List[Dict[str, Any]] = []
    for item in req.get("ranks") or [{"rank": 0}]:
        rank = int(item["rank"])
        extra = {str(k): str(v) for k, v in (item.get("set") or {}).items()}
        rank_env = dict(env, **extra)
        rank_argv, first_line = [str(a) for a in item.get("argv") or argv], None
        if item.get("mpi"):  # the host's mpirun starts the ranks: its command line, made here
            rank_argv, first_line = mpirun.launch(item["mpi"], rank_env)
        ranks.append(
            {"rank": rank, "argv": rank_argv, "env": rank_env,
             "log": os.path.join(run_dir, rank_log(rank)), "container": item.get("container"),
             "first_line": first_line}
        )  # fmt: skip
    max_bytes = req.get("log_max_bytes")
    spec = {
        "cwd": wd,
        "grace": float(req["grace"]),
        "exit_file": os.path.join(run_dir, "exit.json"),
        "log_max_bytes": logcap.DEFAULT_MAX_BYTES if max_bytes is None else int(max_bytes),
        "lease_file": lease,
        "lease_seconds": float(req["lease"]),
        "cancel_file": os.path.join(run_dir, "cancel"),
        "detach": True,
        "ranks": ranks,
    }
    started = _start_watchdog(run_dir, spec)
    if "error" in started:
        raise RuntimeError(started["error"])
    pid = int(started["watchdog"])
    files.write_json(
        os.path.join(run_dir, "job.json"),
        {"pid": pid, "start": proc.start_time(pid), "pgid": started["pgid"]},
    )
    return {"pid": pid, "pgid": started["pgid"]}


def _start_watchdog(run_dir: str, spec: Dict[str, Any]) -> Dict[str, Any]:
    """Run the watchdog script; its first process exits once the detached one has forked, and
    the detached one answers on the pipe."""
    errors = os.open(
        os.path.join(run_dir, "watchdog.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
    )
    try:
        starter = subprocess.Popen(
            [sys.executable, "-S", "-E", "-s", WATCHDOG],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            cwd=run_dir,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        os.close(errors)
    assert starter.stdin is not None and starter.stdout is not None
    try:
        starter.stdin.write(json.dumps(spec).encode("utf-8"))
        starter.stdin.close()
        line = starter.stdout.readline()
    except OSError as exc:
        line = json.dumps({"error": "the watchdog did not answer (%s)" % exc.strerror}).encode()
    finally:
        starter.stdout.close()
        starter.wait()
    try:
        answer: Dict[str, Any] = json.loads(line or b'{"error": "the watchdog exited at once"}')
    except ValueError:
        answer = {"error": "the watchdog answered %r" % line[:200]}
    return answer


def cancel(run_dir: str, grace: float) -> bool:
    """Ask the job's watchdog to stop the job (TERM now, KILL after ``grace``); False when the
    run has no job."""
    if not os.path.exists(os.path.join(run_dir, "job.json")):
        return False
    files.write_atomic(os.path.join(run_dir, "cancel"), str(float(grace)).encode("ascii"))
    return True


def watchdog_alive(run_dir: str) -> bool:
    """True while the run's watchdog runs (its pid with the start time recorded at launch)."""
    try:
        with open(os.path.join(run_dir, "job.json"), encoding="utf-8") as fh:
            data = json.load(fh)
        pid, start = int(data["pid"]), data.get("start")
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return proc.pid_alive(pid) and (start is None or proc.start_time(pid) == start)


def stop_and_wait(run_dir: str, seconds: float) -> None:
    """Cancel the job with no grace and wait up to ``seconds`` for its watchdog to end it."""
    import time

    if not cancel(run_dir, 0.0):
        return
    deadline = time.monotonic() + seconds
    while watchdog_alive(run_dir) and time.monotonic() < deadline:
        time.sleep(0.02)
