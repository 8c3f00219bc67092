"""The warm ferry process behind :mod:`ferry.cli.fast`: imports once, forks a worker per command.

Each worker takes the client's stdin/stdout/stderr, environment, working folder and argv, runs
:func:`ferry.cli.main.main` exactly as the console script would, and reports the exit code. The
zygote itself opens no database or file of any workspace (everything is opened by the worker),
so one zygote serves every workspace of its user. It exits after ``idle`` seconds without a
command, or at once when a client built from other ferry sources connects.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import threading
import time
from typing import Any

from ferry.cli.fast import read_message, send_message


def _preload() -> None:
    """Import what commands need, so workers start warm."""
    import rich.console
    import rich.table
    import sqlalchemy
    import sqlalchemy.dialects.sqlite

    import ferry.cli.main
    import ferry.experiment
    import ferry.ingest
    import ferry.run
    import ferry.snapshot
    import ferry.submit
    import ferry.supervisor
    import ferry.targets.local
    import ferry.tracking.sql
    import ferry.workspace

    try:  # remote targets' libraries, when their extras are installed (asyncssh takes ~0.4 s)
        import ferry.targets.spark
        import ferry.targets.ssh
    except ImportError:
        pass
    _ = (rich, sqlalchemy, ferry)


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    import array

    fds = array.array("i")
    data, ancdata, _flags, _addr = conn.recvmsg(1 << 20, socket.CMSG_SPACE(16 * fds.itemsize))
    for level, kind, cdata in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(cdata[: len(cdata) - (len(cdata) % fds.itemsize)])
    buffer = bytearray(data)
    message = read_message(conn, buffer)
    if message is None:
        raise ConnectionError("the client went away")
    return message, list(fds)


def _worker(conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    """In the forked child: become the client's process, run the command, report the code."""
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    os.chdir(str(request["cwd"]))
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in dict(request["env"]).items()})
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    tty = os.isatty(1)
    sys.stdin = open(0, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False, buffering=1 if tty else -1)  # noqa: SIM115
    sys.stderr = open(  # noqa: SIM115
        2, "w", encoding="utf-8", errors="backslashreplace", closefd=False, buffering=1
    )
    argv = [str(a) for a in request["argv"]]
    sys.argv = ["ferry", *argv]
    relay = threading.Thread(target=_relay_signals, args=(conn,), daemon=True)
    relay.ferry_fork_safe = True  # type: ignore[attr-defined]  # blocked in recv: safe to fork
    relay.start()
    code = 0
    try:
        from ferry.cli.main import main

        main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int | None):
            print(exc.code, file=sys.stderr)
    except KeyboardInterrupt:
        code = 130
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    with contextlib.suppress(OSError):
        send_message(conn, {"exit": code})
    os._exit(code)


def _relay_signals(conn: socket.socket) -> None:
    import _thread

    buffer = bytearray()
    while True:
        try:
            message = read_message(conn, buffer)
        except OSError:
            message = None
        if message is None:  # the client died: stop like a terminal hang-up would
            _thread.interrupt_main()
            return
        if message.get("signal") in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            _thread.interrupt_main()


def serve(path: str, fingerprint: str, idle: float) -> None:
    _preload()
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    temp = f"{path}.{os.getpid()}.tmp"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(temp)
    server.listen(64)
    os.replace(temp, path)  # atomic: a client never sees a half-ready socket
    inode = os.stat(path).st_ino
    with open(f"{path}.pid", "w", encoding="ascii") as fh:
        fh.write(str(os.getpid()))
    signal.signal(signal.SIGCHLD, lambda *_: _reap())
    last = time.monotonic()
    try:
        while True:
            ready, _, _ = select.select([server], [], [], 5.0)
            if not ready:
                if time.monotonic() - last > idle or not _still_ours(path, inode):
                    return
                continue
            conn, _ = server.accept()
            last = time.monotonic()
            try:
                request, fds = _receive(conn)
            except (OSError, ValueError, ConnectionError):
                conn.close()
                continue
            if request.get("fingerprint") != fingerprint:
                for fd in fds:
                    os.close(fd)
                with contextlib.suppress(OSError):
                    send_message(conn, {"started": False, "reason": "stale"})
                conn.close()
                return  # ferry changed under us: make room for a fresh zygote
            pid = os.fork()
            if pid == 0:
                server.close()
                try:
                    send_message(conn, {"started": True})
                    _worker(conn, request, fds)
                finally:
                    os._exit(1)
            for fd in fds:
                os.close(fd)
            conn.close()
    finally:
        with contextlib.suppress(OSError):
            if _still_ours(path, inode):
                os.unlink(path)
                os.unlink(f"{path}.pid")
        server.close()


def _still_ours(path: str, inode: int) -> bool:
    """False once another zygote has taken the socket path over."""
    try:
        return os.stat(path).st_ino == inode
    except OSError:
        return False


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 600.0)
