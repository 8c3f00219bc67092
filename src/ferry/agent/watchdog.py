"""The job's watchdog: runs a job's processes and answers for every process they start.

The supervisor starts it as a script (``python -S -E -s watchdog.py``, standard library only, so
it starts in milliseconds and imports nothing of the job's or ferry's) and writes the job's
description to its stdin as one JSON object (kept off the disk: it holds the job's environment)::

    {"cwd": "…/wd", "grace": 10.0, "leftover_grace": 2.0, "exit_file": "…/exit.json",
     "log_max_bytes": 209715200, "control_fd": 3,
     "lease_file": "…/lease", "lease_seconds": 30.0, "cancel_file": "…/cancel", "detach": false,
     "ranks": [{"rank": 0, "argv": [...], "env": {...}, "log": "…/std_log.txt",
                "first_line": "…" or null}]}

The watchdog then

* with ``detach``, forks into a session of its own and lets its starter go (an SSH agent that
  starts a job must not stay its parent: the job outlives the connection);
* becomes a *child subreaper*: whatever the job forks stays its descendant, even after
  ``setsid``, ``setpgid`` or a double fork (see :mod:`.proc`);
* starts each rank in one process group (the first rank leads it), stdout and stderr through a
  pipe into the rank's log, capped (:mod:`.logcap`), and answers on its stdout with one JSON line:
  ``{"pgid": …, "pids": [...], "watchdog": <its pid>}`` or ``{"error": "cannot start …"}``;
* hears that the job is to stop in up to three ways, each optional: control lines on
  ``control_fd`` — ``cancel <grace seconds>`` and ``note <text>`` (a line of ferry's own for
  rank 0's log, so the log keeps one writer), end-of-file on that pipe meaning the supervisor
  is gone; a ``lease_file`` that whoever follows the job touches, the job being stopped when
  it was not touched for ``lease_seconds`` (reason ``lease``); a ``cancel_file`` whose
  appearance cancels the job (its content, when a number, is the grace in seconds);
* when a rank fails, stops the others (a distributed job fails as one); when the job ends, stops
  every process it left behind; a stop is SIGTERM to every descendant, then, after the grace,
  SIGSTOP + SIGKILL until none is left;
* writes ``exit_file`` atomically last: ``{"code", "reason": "exit"|"cancel"|"lost"|"lease",
  "codes", "failed_rank", "failed_at", "leftovers"}``.

A rank may run in a container (its spec has ``"container": {"engine": <DOCKER_HOST>, "name":
<container name>}``; its process is Docker's client, see :mod:`.container`). The container's
processes are not the watchdog's descendants, so every stop also goes to the container through
the engine: TERM with the others, KILL when the grace is over, and KILL for a container still
there when the job ends (its client was killed, say).
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time

TYPE_CHECKING = False  # typing costs ~4 ms of every job's start; mypy treats this as True
if TYPE_CHECKING:
    from typing import Any

try:
    from . import files, logcap, proc
except ImportError:  # run as a script: this folder is sys.path[0]
    import files  # type: ignore[import-not-found,no-redef]
    import logcap  # type: ignore[import-not-found,no-redef]
    import proc  # type: ignore[import-not-found,no-redef]


def _engine() -> Any:
    """:mod:`.container`, imported only for a rank that runs in a container (its http.client
    import cost ~20 ms of every job's start)."""
    try:
        from . import container
    except ImportError:
        import container  # type: ignore[import-not-found,no-redef]
    return container


READ_SIZE = 1 << 16


class Rank:
    """One process of the job and where its output goes."""

    def __init__(self, spec: dict[str, Any], max_bytes: int) -> None:
        self.rank = int(spec["rank"])
        self.argv = [str(a) for a in spec["argv"]]
        self.env = {str(k): str(v) for k, v in (spec.get("env") or {}).items()}
        self.log = logcap.CappedLog(str(spec["log"]), max_bytes)
        if spec.get("first_line"):
            self.log.write(str(spec["first_line"]).encode("utf-8", "replace"))
        self.pid = 0
        self.fd = -1
        self.code: int | None = None
        box = spec.get("container") or {}
        self.container = (str(box["engine"]), str(box["name"])) if box else None

    def signal_container(self, signal_name: str) -> bool:
        """Send a signal to the rank's container through the engine (False: none running)."""
        return self.container is not None and bool(_engine().kill(*self.container, signal_name))

    def start(self, cwd: str, pgid: int | None, umask: int | None = None) -> str:
        """Fork and exec; returns why it could not start ("" when it did)."""
        read_end, write_end = os.pipe()
        fail_read, fail_write = os.pipe()  # close-on-exec: EOF with no message = exec worked
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                os.setpgid(0, pgid or 0)  # one group for all ranks, led by the first
                proc.die_with_parent()
                if umask is not None:
                    os.umask(umask)
                os.chdir(cwd)
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0)
                os.dup2(write_end, 1)
                os.dup2(write_end, 2)
                for name in ("SIGPIPE", "SIGXFSZ", "SIGTERM", "SIGINT", "SIGHUP"):
                    if hasattr(signal, name):
                        signal.signal(getattr(signal, name), signal.SIG_DFL)
                os.execvpe(self.argv[0], self.argv, self.env)
            except OSError as exc:
                os.write(
                    fail_write, ("cannot start %r: %s" % (self.argv[0], exc.strerror)).encode()
                )
            finally:
                os._exit(127)
        os.close(write_end)
        os.close(fail_write)
        if pgid is not None:
            try:
                os.setpgid(pid, pgid)
            except OSError:
                pass  # it has exec'd or gone already: the child's own call did it
        chunks = []
        while True:
            chunk = os.read(fail_read, 4096)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(fail_read)
        failure = b"".join(chunks).decode("utf-8", "replace")
        self.pid, self.fd = pid, read_end
        if failure:
            self.log.write(("ferry: %s\n" % failure).encode("utf-8", "replace"))
        return failure

    def pump(self) -> bool:
        """Move what the rank wrote into its log; False at end of file."""
        try:
            data = os.read(self.fd, READ_SIZE)
        except OSError:
            data = b""
        if not data:
            os.close(self.fd)
            self.fd = -1
            return False
        self.log.write(data)
        return True


class Watchdog:
    """The loop that minds one job (see the module docstring)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.cwd = str(spec["cwd"])
        self.grace = float(spec.get("grace", 10.0))
        self.leftover_grace = float(spec.get("leftover_grace", 2.0))
        self.exit_file = str(spec["exit_file"])
        max_bytes = int(spec.get("log_max_bytes", logcap.DEFAULT_MAX_BYTES))
        self.ranks = [Rank(r, max_bytes) for r in spec["ranks"]]
        self.control = int(spec["control_fd"]) if spec.get("control_fd") is not None else -1
        self.umask = int(spec["umask"]) if spec.get("umask") is not None else None
        self.lease_file = str(spec["lease_file"]) if spec.get("lease_file") else ""
        self.lease_seconds = float(spec.get("lease_seconds") or 30.0)
        self.cancel_file = str(spec["cancel_file"]) if spec.get("cancel_file") else ""
        self._next_look = 0.0  # when the lease and cancel files are looked at next
        self.me = os.getpid()
        self.pgid: int | None = None
        self.reason = "exit"
        self.kill_at: float | None = None
        self.failed: tuple[float, int, int | None] | None = None  # (time, rank, code)
        self.leftovers = 0
        self._control_buffer = b""
        self._signalled = False
        #: readable when a signal came (SIGCHLD above all): the loop wakes at a child's exit
        #: instead of at its next 0.1 s tick (see :func:`wake_on_signals`)
        self.wake = -1

    # starting --------------------------------------------------------------------------------
    def start(self) -> dict[str, Any]:
        for rank in self.ranks:
            failure = rank.start(self.cwd, self.pgid, self.umask)
            if failure:
                self._stop_all(0.0)
                self._reap()
                return {"error": failure}
            if self.pgid is None:
                self.pgid = rank.pid
        return {"pgid": self.pgid, "pids": [r.pid for r in self.ranks], "watchdog": self.me}

    # minding ---------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        while True:
            watched = [r.fd for r in self.ranks if r.fd >= 0]
            if self.control >= 0:
                watched.append(self.control)
            if self.wake >= 0:
                watched.append(self.wake)
            ready: list[int] = []
            if watched:
                try:
                    ready = select.select(watched, [], [], 0.1)[0]
                except InterruptedError:
                    ready = []
            else:
                time.sleep(0.05)
            for fd in ready:
                if fd == self.wake:
                    _empty(self.wake)
                    continue
                if fd == self.control:
                    self._read_control()
                    continue
                for rank in self.ranks:
                    if rank.fd == fd:
                        rank.pump()
            self._reap()
            now = time.monotonic()
            if self._signalled and self.kill_at is None:
                self._stop("lost", min(self.grace, 2.0))
            if now >= self._next_look:
                self._next_look = now + 0.1
                self._look_at_files()
            self._judge_failures(now)
            if self.kill_at is not None and now >= self.kill_at:
                self._signal_containers("KILL")
                proc.kill_tree(self.me, self._reap, self._groups())
            if all(r.code is not None for r in self.ranks):
                return self._finish()

    def _reap(self) -> None:
        for pid, status in proc.reap_children().items():
            for rank in self.ranks:
                if rank.pid == pid and rank.code is None:
                    rank.code = proc.exit_code(status)

    def _groups(self) -> list[int]:
        return [self.pgid] if self.pgid is not None else []

    def _judge_failures(self, now: float) -> None:
        """The first rank to fail stops the others (a real exit code beats a signal)."""
        if self.failed is not None or self.kill_at is not None:
            return
        failed = [r for r in self.ranks if r.code not in (None, 0)]
        if not failed:
            return
        first = min(failed, key=lambda r: ((r.code or 0) < 0, r.rank))
        self.failed = (time.time(), first.rank, first.code)
        if any(r.code is None for r in self.ranks):
            self._stop_all(self.grace)

    def _read_control(self) -> None:
        try:
            data = os.read(self.control, 4096)
        except OSError:
            data = b""
        if not data:  # the supervisor is gone: so is the job
            os.close(self.control)
            self.control = -1
            if all(r.code is not None for r in self.ranks):
                return
            self._note("ferry: the run's supervisor is gone; the job is stopped")
            self._stop("lost", min(self.grace, 2.0))
            return
        self._control_buffer += data
        while b"\n" in self._control_buffer:
            line, self._control_buffer = self._control_buffer.split(b"\n", 1)
            word, _, rest = line.decode("utf-8", "replace").partition(" ")
            if word == "cancel":
                try:
                    grace = float(rest)
                except ValueError:
                    grace = self.grace
                self._stop("cancel", grace)
            elif word == "note":
                self._note(rest)

    def _look_at_files(self) -> None:
        """The cancel file (cancel) and the lease file (stop when nobody follows any more)."""
        if self.kill_at is not None or all(r.code is not None for r in self.ranks):
            return
        if self.cancel_file and os.path.exists(self.cancel_file):
            try:
                with open(self.cancel_file, encoding="utf-8") as fh:
                    grace = float(fh.read().strip() or self.grace)
            except (OSError, ValueError):
                grace = self.grace
            self._stop("cancel", grace)
            return
        if not self.lease_file:
            return
        try:
            age = time.time() - os.stat(self.lease_file).st_mtime
        except OSError:
            age = self.lease_seconds + 1.0
        if age > self.lease_seconds:
            self._note(
                "ferry: the supervisor following this run has been gone for %.0f s (lease %.0f "
                "s); the job's watchdog stops the job" % (age, self.lease_seconds)
            )
            self._stop("lease", self.grace)

    def _note(self, text: str) -> None:
        if self.ranks:
            self.ranks[0].log.write(("\n%s\n" % text.rstrip("\n")).encode("utf-8", "replace"))

    def _stop(self, reason: str, grace: float) -> None:
        if self.reason == "exit":
            self.reason = reason
        self._stop_all(grace)

    def _stop_all(self, grace: float) -> None:
        """TERM the job's group and every descendant; KILL after ``grace``."""
        for pgid in self._groups():
            proc.signal_group(pgid, signal.SIGTERM)
        for pid in proc.descendants(self.me):
            proc.signal_pid(pid, signal.SIGTERM)
        self._signal_containers("TERM" if grace > 0 else "KILL")
        deadline = time.monotonic() + grace
        if self.kill_at is None or deadline < self.kill_at:
            self.kill_at = deadline

    def _signal_containers(self, signal_name: str) -> None:
        for rank in self.ranks:
            rank.signal_container(signal_name)

    # ending ------------------------------------------------------------------------------------
    def _finish(self) -> dict[str, Any]:
        stopped = [
            r.rank for r in self.ranks if self._may_outlive(r) and r.signal_container("KILL")
        ]
        if stopped:  # its client was killed before it: the container is stopped now
            self.leftovers += len(stopped)
            self._note("ferry: the container of rank(s) %s outlived its client; it is stopped"
                       % ", ".join(map(str, stopped)))  # fmt: skip
        left = proc.descendants(self.me)
        if left:  # what the job left behind (daemons, setsid'd children) goes with it
            self.leftovers += len(left)
            self._note(
                "ferry: the job left %d process(es) running; they are stopped with it" % len(left)
            )
            proc.stop_tree(self.me, self.leftover_grace, self._reap, self._groups())
        self._drain(2.0)
        self._last_notes()
        for rank in self.ranks:
            rank.log.close()
        first = self.ranks[0]
        if self.failed is not None:
            failed_at, failed_rank, code = self.failed
        else:
            failed_at, failed_rank, code = None, None, first.code
        return {
            "code": code,
            "reason": self.reason,
            "codes": {str(r.rank): r.code for r in self.ranks},
            "failed_rank": failed_rank,
            "failed_at": failed_at,
            "leftovers": self.leftovers,
        }

    def _may_outlive(self, rank: Rank) -> bool:
        """Whether the rank's container may still run: its client was stopped or killed, or
        Docker itself failed (125 and up), rather than reporting the container's own end. Only
        then is the engine asked (its client module costs ~50 ms to import: not on every run)."""
        if rank.container is None:
            return False
        return self.reason != "exit" or rank.code is None or not 0 <= rank.code < 125

    def _last_notes(self) -> None:
        """Write the notes already sent, then close the control pipe: from then on the
        supervisor's writes fail (EPIPE) and it writes its lines to the log itself."""
        while self.control >= 0 and select.select([self.control], [], [], 0)[0]:
            self._read_control()
        if self.control >= 0:
            os.close(self.control)
            self.control = -1

    def _drain(self, seconds: float) -> None:
        """Read what is left in the pipes (every writer is gone, so this ends quickly)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            open_fds = [r.fd for r in self.ranks if r.fd >= 0]
            if not open_fds:
                return
            ready = select.select(open_fds, [], [], 0.05)[0]
            for rank in self.ranks:
                if rank.fd in ready:
                    rank.pump()
        for rank in self.ranks:
            if rank.fd >= 0:
                os.close(rank.fd)
                rank.fd = -1


write_json = files.write_json


def wake_on_signals() -> int:
    """A pipe that becomes readable when a signal arrives (``signal.set_wakeup_fd``), with a
    SIGCHLD handler so a child's exit is one: the loop's ``select`` then ends at once. Without
    it the exit of a job's last process waited for the next tick (~0.1 s of every run)."""
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # reset to default at exec
    signal.set_wakeup_fd(write_end)
    return read_end


def _empty(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except OSError:  # nothing more (EAGAIN)
        pass


def main() -> int:
    spec = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    if spec.get("detach"):  # the starter waits for this first process only: it goes at once
        if os.fork() > 0:
            os._exit(0)
        os.setsid()
    proc.set_child_subreaper()
    control = spec.get("control_fd")
    if control is not None:
        os.set_inheritable(int(control), False)
    dog = Watchdog(spec)

    def on_signal(signum: int, frame: object) -> None:
        dog._signalled = True

    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, on_signal)
    dog.wake = wake_on_signals()
    started = dog.start()
    os.write(1, (json.dumps(started) + "\n").encode())
    os.dup2(devnull, 1)  # the supervisor has its answer: nothing more on that pipe
    if "error" in started:
        write_json(dog.exit_file, {"code": 127, "reason": "exit", "error": started["error"]})
        return 0
    write_json(dog.exit_file, dog.run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
