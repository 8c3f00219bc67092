"""The watchdog's lifelines for jobs nobody holds a pipe to (SSH hosts, Ray nodes): a lease file
that must stay fresh, a cancel file, and a detached start that outlives its starter. Real
processes, on this Python and on a real 3.8 (the oldest a host may have)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ferry.agent.proc import pid_alive
from ferry.targets.watched import WATCHDOG

PY38 = Path.home() / ".pyenv/versions/3.8.18/bin/python"

# a plain child, a setsid'd one and one in a group of its own; their pids, then sleep until stopped
ESCAPEES = r"""
import os, subprocess, sys, time
kids = [subprocess.Popen(["sleep", "300"]), subprocess.Popen(["sleep", "300"], start_new_session=True),
        subprocess.Popen(["sleep", "300"], preexec_fn=lambda: os.setpgid(0, 0))]
open(sys.argv[1] + ".tmp", "w").write(" ".join(str(k.pid) for k in kids))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
print("started", flush=True)
time.sleep(300)
"""


def _interpreters() -> list[str]:
    assert PY38.exists(), f"Python 3.8 is needed for these tests: pyenv install 3.8.18 ({PY38})"
    return [sys.executable, str(PY38)]


def _spec(tmp_path: Path, argv: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "cwd": str(tmp_path),
        "grace": 1.0,
        "exit_file": str(tmp_path / "exit.json"),
        "ranks": [{"rank": 0, "argv": argv, "env": dict(os.environ), "log": str(tmp_path / "log")}],
        **extra,
    }


def _start(python: str, spec: dict[str, Any]) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    proc = subprocess.Popen(
        [python, "-S", "-E", "-s", str(WATCHDOG)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(spec).encode())
    proc.stdin.close()
    answer: dict[str, Any] = json.loads(proc.stdout.readline())
    proc.stdout.close()
    return proc, answer


def _wait(predicate: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _exit(tmp_path: Path, seconds: float = 20.0) -> dict[str, Any]:
    path = tmp_path / "exit.json"
    _wait(path.exists, seconds, "exit.json")
    result: dict[str, Any] = json.loads(path.read_text())
    return result


def _escapees(tmp_path: Path) -> tuple[list[str], Path]:
    pids = tmp_path / "pids"
    return [sys.executable, "-c", ESCAPEES, str(pids)], pids


@pytest.mark.parametrize("python", _interpreters(), ids=["ferry's python", "python3.8"])
def test_an_expired_lease_stops_the_job_and_every_descendant(tmp_path: Path, python: str) -> None:
    argv, pids_file = _escapees(tmp_path)
    lease = tmp_path / "lease"
    lease.touch()
    proc, answer = _start(python, _spec(tmp_path, argv, lease_file=str(lease), lease_seconds=1.0))
    _wait(pids_file.exists, 20, "the children")
    pids = [int(p) for p in pids_file.read_text().split()]
    t = time.monotonic()
    result = _exit(tmp_path)
    assert 0.5 < time.monotonic() - t < 10  # not before the lease ran out
    assert result["reason"] == "lease" and result["code"] == -signal.SIGTERM
    assert _wait(lambda: not any(pid_alive(p) for p in pids), 10, "the children to die")
    log = (tmp_path / "log").read_text()
    assert "has been gone" in log and "(lease 1 s)" in log
    assert proc.wait(10) == 0 and answer["watchdog"] == proc.pid


def test_a_lease_kept_fresh_lets_the_job_finish(tmp_path: Path) -> None:
    flag = tmp_path / "go"
    lease = tmp_path / "lease"
    lease.touch()
    code = f"import os, time\nwhile not os.path.exists({str(flag)!r}): time.sleep(0.02)\n"
    proc, _ = _start(
        sys.executable,
        _spec(tmp_path, [sys.executable, "-c", code], lease_file=str(lease), lease_seconds=0.6),
    )
    stop = threading.Event()

    def follow() -> None:  # what the SSH agent does on every request of its supervisor
        while not stop.wait(0.1):
            os.utime(lease)

    follower = threading.Thread(target=follow)
    follower.start()
    try:
        time.sleep(2.0)  # more than three leases: the job must still run
        assert not (tmp_path / "exit.json").exists()
        flag.touch()
        result = _exit(tmp_path)
    finally:
        stop.set()
        follower.join()
    assert (result["reason"], result["code"]) == ("exit", 0)
    assert proc.wait(10) == 0


@pytest.mark.parametrize("python", _interpreters(), ids=["ferry's python", "python3.8"])
def test_a_cancel_file_stops_every_descendant(tmp_path: Path, python: str) -> None:
    argv, pids_file = _escapees(tmp_path)
    cancel = tmp_path / "cancel"
    proc, _ = _start(python, _spec(tmp_path, argv, cancel_file=str(cancel)))
    _wait(pids_file.exists, 20, "the children")
    pids = [int(p) for p in pids_file.read_text().split()]
    assert len(pids) == 3 and all(pid_alive(p) for p in pids)
    cancel.write_text("0.5")
    result = _exit(tmp_path)
    assert result["reason"] == "cancel" and result["code"] == -signal.SIGTERM
    assert _wait(lambda: not any(pid_alive(p) for p in pids), 10, "the children to die")
    assert proc.wait(10) == 0


def test_a_detached_watchdog_outlives_its_starter(tmp_path: Path) -> None:
    """The starter (an SSH agent that goes with its channel) ends at once; the watchdog, in a
    session of its own, minds the job and is reached through its files."""
    argv, pids_file = _escapees(tmp_path)
    cancel = tmp_path / "cancel"
    starter, answer = _start(
        sys.executable, _spec(tmp_path, argv, cancel_file=str(cancel), detach=True)
    )
    assert starter.wait(10) == 0  # gone while the job runs
    watchdog = int(answer["watchdog"])
    assert watchdog != starter.pid and pid_alive(watchdog)
    assert os.getsid(watchdog) == watchdog  # a session of its own
    _wait(pids_file.exists, 20, "the children")
    pids = [int(p) for p in pids_file.read_text().split()]
    assert not (tmp_path / "exit.json").exists()
    cancel.write_text("1")
    assert _exit(tmp_path)["reason"] == "cancel"
    assert _wait(lambda: not any(pid_alive(p) for p in [*pids, watchdog]), 10, "everything to end")
