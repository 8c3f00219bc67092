"""A long-lived agent per host and agent version, reached over SSH without starting a shell.

Running a program over SSH first runs the account's login shell — on hosts whose ``.bashrc``
runs ``conda init`` or ``pyenv init`` that alone costs 100-300 ms — and then starts Python. So
the first session of an agent version starts this daemon (detached, its own session), and later
connections open a ``direct-streamlocal`` channel to its Unix socket ``agent-<hash>/agent.sock``
(no shell, no interpreter start) and speak the same protocol, one thread per connection.

The socket is only usable by its owner (made under umask 077). One daemon per socket (a lock file held for
its life). It exits after ``IDLE_SECONDS`` without connections, or when its socket is gone (the
work folder was removed). A host that forbids stream-local forwarding simply keeps using the
per-channel agent. Jobs never depend on the daemon: each has its own watchdog process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

from .serve import Agent, Out, prepare_root

IDLE_SECONDS = 900.0
CHECK_SECONDS = 5.0
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux

_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from ferry_agent.daemon import run; run(*sys.argv[1:])"


def socket_path(agent_dir: str) -> str | None:
    path = os.path.join(os.path.abspath(agent_dir), "agent.sock")
    return path if len(path.encode()) <= MAX_SOCKET_PATH else None


def _listening(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(0.5)
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def ensure(root: str, agent_dir: str) -> str | None:
    """The daemon's socket path, starting the daemon when none listens (None: not possible)."""
    path = socket_path(agent_dir)
    if path is None or sys.platform != "linux":
        return None
    if not _listening(path):
        with open(os.path.join(agent_dir, "daemon.log"), "ab") as log:
            subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _BOOT, agent_dir, root],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                close_fds=True,
            )
    return path


def run(agent_dir: str, root: str) -> None:
    """Serve connections on the socket until idle (or replaced)."""
    import fcntl

    path = socket_path(agent_dir)
    if path is None:
        return
    lock = open(path + ".lock", "a")  # noqa: SIM115 - held for the daemon's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another daemon serves this socket
    root = prepare_root(root)
    if os.path.lexists(path):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    umask = os.umask(0o077)
    try:
        server.bind(path)
    finally:
        os.umask(umask)
    server.listen(64)
    server.settimeout(CHECK_SECONDS)
    inode = os.stat(path).st_ino
    active = _Counter()
    last = time.monotonic()
    while True:
        try:
            conn, _ = server.accept()
        except socket.timeout:
            try:
                replaced = os.stat(path).st_ino != inode
            except OSError:
                replaced = True
            idle = active.value == 0 and time.monotonic() - last > IDLE_SECONDS
            if replaced or idle:
                break
            continue
        last = time.monotonic()
        conn.settimeout(None)
        thread = threading.Thread(target=_session, args=(conn, root, active), daemon=True)
        thread.start()
    try:
        if os.stat(path).st_ino == inode:
            os.unlink(path)
    except OSError:
        pass
    server.close()


class _Counter:
    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def add(self, delta: int) -> None:
        with self._lock:
            self.value += delta


def _session(conn: socket.socket, root: str, active: _Counter) -> None:
    active.add(1)
    reader = conn.makefile("rb")
    writer = conn.makefile("wb")
    try:
        Agent(root, reader, Out(writer, exit_when_gone=False), {"daemon": True}).serve()
    finally:
        active.add(-1)
        for closing in (reader, writer, conn):
            try:
                closing.close()
            except OSError:
                pass
