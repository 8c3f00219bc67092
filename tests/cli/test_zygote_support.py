"""Shared helpers for the zygote tests: real ``ferry`` processes, observed through /proc.

The central trick: a command's stdout (or stderr) is a pipe filled to the brim beforehand, so the
process that runs the command blocks in ``write`` with everything still open. The test then finds
that process in /proc (who holds the pipe and waits in ``pipe_write``) and reads its pid, ppid,
umask and limits — proof of *which* process ran the command, not just of its output.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ferry.cli.fast import package_fingerprint

FERRY = str(Path(sys.executable).parent / "ferry")
OTHER_USER = "ferrytest-other"
DEADLINE = 90.0  # generous: the machine is shared; a deadline only matters when failing


def ferry(
    env: dict[str, str], *args: str, cwd: Path | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FERRY, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60, **kwargs
    )


def socket_for(env: dict[str, str]) -> Path:
    """Where a client with ``env`` looks for its zygote."""
    return Path(env["FERRY_ZYGOTE_DIR"]) / f"{package_fingerprint(env)}.sock"


def wait_for(predicate: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    end = time.monotonic() + deadline
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.02)


def wait_for_zygote(env: dict[str, str]) -> int:
    """The pid of the zygote listening in ``env``'s folder, once it listens.

    Found by looking (one zygote per test folder), not by recomputing the fingerprint: other
    people edit ferry's sources in this tree, and an edit changes the socket's name.
    """
    sock = zygote_socket(env)
    pid = int(Path(f"{sock}.pid").read_text())
    assert Path(f"/proc/{pid}").exists()
    return pid


def zygote_socket(env: dict[str, str]) -> Path:
    """The socket of the zygote in ``env``'s folder, once there is one."""
    folder = Path(env["FERRY_ZYGOTE_DIR"])

    def listening() -> Path | None:
        sockets = [p for p in folder.glob("*.sock") if Path(f"{p}.pid").exists()]
        return sockets[-1] if sockets else None

    found: Path = wait_for(listening, f"a zygote's socket in {folder}")
    return found


def ppid_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def proc_status(pid: int, key: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {key} in /proc/{pid}/status")


def proc_limit(pid: int, title: str) -> tuple[str, str]:
    """(soft, hard) of the limit titled ``title`` in /proc/<pid>/limits."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith(title):
            soft, hard = line[len(title) :].split()[:2]
            return soft, hard
    raise AssertionError(f"no {title!r} in /proc/{pid}/limits")


def kill_zygotes(folder: Path) -> None:
    """Stop every zygote that wrote a pid file in ``folder`` and wait until it is gone."""
    for pid_file in folder.glob("*.pid"):
        with contextlib.suppress(ValueError, OSError):
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda p=pid: not _alive(p), f"zygote {pid} to exit", 10)  # type: ignore[misc]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(name="zygote_env")
def zygote_env_fixture(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = dict(os.environ)
    env["FERRY_ZYGOTE_DIR"] = str(tmp_path / "zyg")
    env["FERRY_HOME"] = str(tmp_path / "ferry home")
    env.pop("FERRY_NO_DAEMON", None)
    before = package_fingerprint(env)
    yield env
    kill_zygotes(tmp_path / "zyg")
    if package_fingerprint(env) != before:  # shown with a failure: the likely cause
        print("ferry's sources changed during this test: clients looked for another zygote")


def other_user() -> tuple[int, int]:
    """(uid, gid) of a throwaway local user, created if absent (the tests run as root)."""
    try:
        entry = pwd.getpwnam(OTHER_USER)
    except KeyError:
        subprocess.run(["useradd", "-M", OTHER_USER], check=True, capture_output=True)
        entry = pwd.getpwnam(OTHER_USER)
    return entry.pw_uid, entry.pw_gid


def in_child_as(uid: int, gid: int, work: Callable[[], bytes]) -> bytes:
    """Run ``work`` in a forked child under ``uid``/``gid``; what it returns (or its error)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            result = work()
        except BaseException as exc:
            result = f"error: {exc!r}".encode()
        os.write(write_end, result)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as fh:
        result = fh.read()
    os.waitpid(pid, 0)
    return result


def filled_pipe() -> tuple[int, int]:
    """A pipe whose buffer is already full: the next write into it blocks."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    os.set_blocking(write_end, False)
    with contextlib.suppress(BlockingIOError):
        while True:
            os.write(write_end, b"." * 4096)
    os.set_blocking(write_end, True)
    return read_end, write_end


def pipe_holders(inode: int) -> set[int]:
    """Processes other than this one with the pipe open."""
    link, holders = f"pipe:[{inode}]", set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if any(os.readlink(fd) == link for fd in (entry / "fd").iterdir()):
                    holders.add(int(entry.name))
    return holders


def _blocked_writers(inode: int) -> set[int]:
    blocked = set()
    for pid in pipe_holders(inode):
        with contextlib.suppress(OSError):
            if "pipe_write" in Path(f"/proc/{pid}/wchan").read_text():
                blocked.add(pid)
    return blocked


@dataclass
class Blocked:
    """A ``ferry`` command stopped at its first write to the filled stream."""

    proc: subprocess.Popen[bytes]
    writer: int
    holders: set[int]
    _read_end: int
    _err: Any

    def finish(self) -> tuple[int, bytes, str]:
        """Let it go: (exit code, what it wrote after the filler, its other stream)."""
        data = bytearray()
        end = time.monotonic() + DEADLINE
        while True:
            ready, _, _ = select.select([self._read_end], [], [], 0.2)
            if ready:
                chunk = os.read(self._read_end, 65536)
                if not chunk:
                    break
                data.extend(chunk)
            assert time.monotonic() < end, "the command did not finish"
        code = self.proc.wait(timeout=DEADLINE)
        self._err.seek(0)
        return code, bytes(data).lstrip(b"."), self._err.read().decode(errors="replace")


@pytest.fixture(name="blocked_command")
def blocked_command_fixture() -> Iterator[Callable[..., Blocked]]:
    started: list[Blocked] = []

    def start(env: dict[str, str], *args: str, stream: int = 1, **kwargs: Any) -> Blocked:
        read_end, write_end = filled_pipe()
        inode = os.fstat(read_end).st_ino
        err = tempfile.TemporaryFile()  # noqa: SIM115  (closed by the fixture)
        out, other = (write_end, err) if stream == 1 else (err, write_end)
        proc = subprocess.Popen([FERRY, *args], env=env, stdout=out, stderr=other, **kwargs)
        os.close(write_end)

        def blocked_writer() -> int | None:
            writers = _blocked_writers(inode)
            if not writers and proc.poll() is not None:
                err.seek(0)
                raise AssertionError(f"ferry exited {proc.returncode}: {err.read()!r}")
            return writers.pop() if len(writers) == 1 else None

        writer = wait_for(blocked_writer, "the command to block on its output")
        blocked = Blocked(proc, writer, pipe_holders(inode), read_end, err)
        started.append(blocked)
        return blocked

    yield start
    for blocked in started:
        if blocked.proc.poll() is None:
            blocked.proc.kill()
            blocked.proc.wait()
        with contextlib.suppress(OSError):
            os.close(blocked._read_end)
        blocked._err.close()
