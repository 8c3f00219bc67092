"""A job on this machine under its watchdog (:mod:`ferry.agent.watchdog`), seen from the supervisor.

The supervisor never forks Python code (it has a database open and a heartbeat thread): it
execs the watchdog script, hands it the job on stdin and keeps the write end of a *control* pipe.
A line on that pipe cancels the job or adds a line of ferry's own to the log; the pipe's closing
— the supervisor's death, however it dies — makes the watchdog stop the whole job. The job's
result is the watchdog's ``exit.json``.

Example::

    job = WatchedJob.start([JobProcess(0, argv, env, log_path)], cwd=wd, run_dir=run_dir, grace=10)
    while (code := job.wait(0.05)) is None:
        ...
    job.result()["failed_rank"]
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferry.agent import logcap
from ferry.errors import TargetError

WATCHDOG = Path(__file__).resolve().parent.parent / "agent" / "watchdog.py"
EXIT_FILE = "exit.json"


@dataclass(frozen=True)
class JobProcess:
    """One process of a job: its command line, full environment and log file."""

    rank: int
    argv: list[str]
    env: dict[str, str]
    log_path: str
    first_line: str | None = None
    #: the rank runs in a container: ``{"engine": DOCKER_HOST, "name": container name}``, which
    #: the watchdog stops through the engine (its processes are not the watchdog's descendants)
    container: dict[str, str] | None = None


class WatchedJob:
    """The supervisor's handle on one running job."""

    def __init__(self, popen: subprocess.Popen[bytes], control: int, exit_file: Path, pgid: int):
        self._popen = popen
        self._control = control
        self._pidfd: int | None = None
        self.exit_file = exit_file
        self.pgid = pgid
        self._result: dict[str, Any] | None = None

    @classmethod
    def start(
        cls,
        launches: Sequence[JobProcess],
        cwd: Path,
        run_dir: Path,
        grace: float,
        leftover_grace: float = 2.0,
        log_max_bytes: int | None = None,
        umask: int | None = None,
    ) -> WatchedJob:
        """Start the watchdog and, through it, every rank; raises TargetError if one cannot."""
        exit_file = run_dir / EXIT_FILE
        exit_file.unlink(missing_ok=True)
        read_end, write_end = os.pipe()
        spec = {
            "cwd": str(cwd),
            "grace": grace,
            "leftover_grace": leftover_grace,
            "exit_file": str(exit_file),
            "log_max_bytes": logcap.max_bytes_from_env()
            if log_max_bytes is None
            else log_max_bytes,
            "control_fd": read_end,
            "umask": umask,
            "ranks": [
                {
                    "rank": launch.rank,
                    "argv": launch.argv,
                    "env": launch.env,
                    "log": launch.log_path,
                    "first_line": launch.first_line,
                    "container": launch.container,
                }
                for launch in launches
            ],
        }
        run_dir.mkdir(parents=True, exist_ok=True)
        try:
            with open(run_dir / "watchdog.log", "ab") as errors:
                popen = subprocess.Popen(
                    [sys.executable, "-S", "-E", "-s", str(WATCHDOG)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=errors,
                    pass_fds=(read_end,),
                    start_new_session=True,
                    cwd=str(run_dir),
                )
        except OSError as exc:
            os.close(read_end)
            os.close(write_end)
            raise TargetError(f"cannot start the job's watchdog: {exc.strerror}") from exc
        os.close(read_end)
        assert popen.stdin is not None and popen.stdout is not None
        try:
            popen.stdin.write(json.dumps(spec).encode())
            popen.stdin.close()
            line = popen.stdout.readline()
        except OSError as exc:
            line = json.dumps({"error": f"the watchdog did not answer ({exc.strerror})"}).encode()
        popen.stdout.close()
        try:
            started = json.loads(line or b'{"error": "the watchdog exited at once"}')
        except ValueError:
            started = {"error": f"the watchdog answered {line[:200]!r}"}
        if "error" in started:
            os.close(write_end)
            popen.wait()
            raise TargetError(str(started["error"]))
        return cls(popen, write_end, exit_file, int(started["pgid"]))

    # following ---------------------------------------------------------------------------------
    def poll(self) -> int | None:
        """The job's exit code once the watchdog has ended it, else None."""
        if self._popen.poll() is None:
            return None
        return self._code()

    def wait(self, timeout: float) -> int | None:
        """The exit code once the watchdog has ended, else None after ``timeout`` seconds. On
        Linux the watchdog's end is seen at once (a pidfd); ``Popen.wait`` would poll with
        sleeps that grow to 50 ms, ~10 ms late on average for every run."""
        if self._popen.returncode is None and self._ready(timeout):
            self._popen.poll()
        if self._popen.returncode is None:
            try:
                self._popen.wait(0 if self._pidfd is not None else timeout)
            except subprocess.TimeoutExpired:
                return None
        self._close_pidfd()
        return self._code()

    def _ready(self, timeout: float) -> bool:
        """Wait on the watchdog's pidfd (False where there is none: the caller polls)."""
        if self._pidfd is None:
            pidfd_open = getattr(os, "pidfd_open", None)
            if pidfd_open is None:
                return False
            try:
                self._pidfd = pidfd_open(self._popen.pid)
            except OSError:  # an older kernel, or the process has been reaped
                return False
        return bool(select.select([self._pidfd], [], [], timeout)[0])

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def _code(self) -> int:
        result = self.result()
        code = result.get("code")
        return int(code) if isinstance(code, int) else 1

    def result(self) -> dict[str, Any]:
        """``exit.json``: code, reason, codes, failed_rank, failed_at, leftovers."""
        if self._result is None:
            try:
                self._result = json.loads(self.exit_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self._result = {
                    "code": -9,
                    "reason": "lost",
                    "error": "the job's watchdog ended without a word "
                    f"(exit status {self._popen.returncode}); see watchdog.log in the run folder",
                }
            self.close_control()
        return self._result

    # controlling -------------------------------------------------------------------------------
    def cancel(self, grace_seconds: float) -> None:
        """Stop the whole job (TERM, KILL after the grace); returns at once."""
        self._send(f"cancel {grace_seconds}\n")

    def note(self, text: str) -> bool:
        """A line of ferry's own for the main log (the watchdog is its only writer)."""
        return self._send("note " + text.replace("\n", " ") + "\n")

    def _send(self, line: str) -> bool:
        if self._control < 0:
            return False
        try:
            os.write(self._control, line.encode("utf-8", "replace"))
            return True
        except OSError:
            return False

    def close_control(self) -> None:
        if self._control >= 0:
            os.close(self._control)
            self._control = -1
