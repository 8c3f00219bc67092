"""The guard that keeps a Spark job's processes from outliving the supervisor (no JVM needed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from ferry.liveness import pid_alive
from ferry.targets.spark.target import GUARD, _guard_dies_with_parent
from ferry.testing.conformance import wait_until


def _guarded(*command: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-I", "-S", str(GUARD), str(os.getpid()), *command],
        start_new_session=True,
        preexec_fn=_guard_dies_with_parent,
    )


def test_the_guard_reports_the_jobs_exit() -> None:
    assert _guarded("sh", "-c", "exit 3").wait(30) == 3
    assert _guarded("sh", "-c", "kill -KILL $$").wait(30) == -signal.SIGKILL
    assert _guarded("/no/such/spark-submit").wait(30) == 127


def test_a_cancel_waits_for_the_job_then_reports_it(awkward_dir: Path) -> None:
    started = awkward_dir / "started"
    guard = _guarded("sh", "-c", 'touch "$0"; sleep 300', str(started))
    wait_until(started.exists, what="the job to start")
    os.killpg(guard.pid, signal.SIGTERM)  # what a cancel does to the job's group
    assert guard.wait(30) == -signal.SIGTERM


def test_the_supervisors_death_kills_every_process_of_the_job(awkward_dir: Path) -> None:
    pid_file = awkward_dir / "grandchild.pid"
    supervisor = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import os, subprocess, sys, time
                from ferry.targets.spark.target import GUARD, _guard_dies_with_parent
                job = 'sleep 300 & echo $! > "$PID_FILE"; wait'
                subprocess.Popen(
                    [sys.executable, "-I", "-S", str(GUARD), str(os.getpid()), "sh", "-c", job],
                    start_new_session=True, preexec_fn=_guard_dies_with_parent,
                )
                time.sleep(300)
                """
            ),
        ],
        env={**os.environ, "PID_FILE": str(pid_file)},
    )
    wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), what="the job")
    grandchild = int(pid_file.read_text())
    supervisor.kill()
    supervisor.wait()
    wait_until(lambda: not pid_alive(grandchild), timeout=10, what="the job's processes to die")
