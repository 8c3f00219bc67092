"""The warm ferry process behind :mod:`ferry.cli.fast`: imports once, forks a process per request.

Two requests, each on its own connection:

- ``run``: a worker takes the client's place — its stdin/stdout/stderr (passed as descriptors),
  environment (read from the client's ``/proc/<pid>/environ``; sent only where /proc cannot give
  it), working folder, umask, resource limits and ``sys.path`` — runs :func:`ferry.cli.main.main`
  exactly as the console script would, and reports the exit code.
- ``supervise``: a double-forked child in its own session, holding only fds 0–2, with the
  submitter's environment, umask and limits, runs :func:`ferry.supervisor.supervise_detached_child`.

Trust checks where requests enter (the client's side is described in :mod:`ferry.cli.fast`): the
socket folder is opened without following links and must be ours with mode 0700, or the zygote
does not serve; the socket is bound under umask 077 and chmod 0600; every connection's
``SO_PEERCRED`` uid must equal ours or it is closed unread; requests are bounded in size and
checked field by field; the pid file is written beside the socket through the checked folder's
descriptor (temporary file with ``O_EXCL|O_NOFOLLOW``, then rename), so a planted link is never
followed. Diagnostics go to ``zygote.log`` in the folder.

Test-only: when a supervise request's environment sets ``FERRY_ZYGOTE_TEST_SUPERVISOR`` to
``module:function``, the child calls that function (same signature) instead of the supervisor,
so the tests can observe the child's descriptors, session, umask and environment.

The zygote stays a clean parent: it opens no database or file of any workspace (workers open
them), so one zygote serves every workspace of its user, and it stays single-threaded — checked
before every fork. It exits after ``idle`` seconds without a request, when its socket is taken
over, within seconds of an edit to ferry's sources (no client would find it any more), or at once
when a client built from other ferry sources connects.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from ferry.cli.fast import (
    RLIMITS,
    log_line,
    open_log,
    open_private_dir,
    package_fingerprint,
    parse_environ,
    path_in,
    peer_credentials,
    read_message,
    send_message,
)

_RECEIVE_TIMEOUT = 5.0
#: Test-only: ``module:function`` a supervise child calls instead of the real supervisor.
TEST_SUPERVISOR_VARIABLE = "FERRY_ZYGOTE_TEST_SUPERVISOR"


class _BadRequest(ValueError):
    """A request the zygote will not act on; the reason goes back to the client."""


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
    import ferry.runconfig
    import ferry.script_run_config
    import ferry.snapshot
    import ferry.submit
    import ferry.supervisor
    import ferry.targets.local
    import ferry.tracking.sql
    import ferry.workspace

    _preload_run_path()

    try:  # remote targets' libraries, when their extras are installed (asyncssh takes ~0.4 s)
        import ferry.targets.spark
        import ferry.targets.ssh.target  # the package alone no longer loads asyncssh
    except ImportError:
        pass
    import ferry.snapshot.blobstore.http
    import ferry.tracking.http  # a server's workspace: httpx, warm for its clients

    try:  # PostgreSQL (the server extra): the server's supervisors open its database
        importlib.import_module("psycopg")
        importlib.import_module("sqlalchemy.dialects.postgresql.psycopg")
    except ImportError:
        pass
    _ = (rich, sqlalchemy, ferry)


def _preload_run_path() -> None:
    """What every submit and every supervisor used to import on its own (~25 ms a plain run,
    ~35 ms a Docker run, measured): the database driver, the run's end (kept outputs' digests,
    models), the job's runtime folder (its content hash, computed once here), and the Docker
    environment's modules (they import neither the ``docker`` library nor ``requests``)."""
    import compileall
    import filecmp
    import sqlite3

    import ferry.envbuild.docker_base
    import ferry.envbuild.docker_build
    import ferry.envbuild.docker_context
    import ferry.envbuild.docker_engine
    import ferry.envbuild.docker_prune
    import ferry.model.registry
    import ferry.tracking.sql_assets
    from ferry.runtime import layout

    layout.runtime_digest()
    _ = (compileall, filecmp, sqlite3, ferry)


def _field(request: dict[str, Any], name: str, kind: type) -> Any:
    value = request.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _BadRequest(f"the request's {name!r} must be a {kind.__name__}")
    return value


def _strings(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _BadRequest(f"the request's {name!r} must be a list of strings")
    return value


def _string_map(value: Any, name: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _BadRequest(f"the request's {name!r} must map strings to strings")
    return value


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    import array

    fds = array.array("i")
    data, ancdata, _flags, _addr = conn.recvmsg(1 << 20, socket.CMSG_SPACE(16 * fds.itemsize))
    for level, kind, cdata in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(cdata[: len(cdata) - (len(cdata) % fds.itemsize)])
    buffer = bytearray(data)
    try:
        message = read_message(conn, buffer)
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    if message is None:
        for fd in fds:
            os.close(fd)
        raise ConnectionError("the client went away")
    return message, list(fds)


def _limits(value: Any) -> dict[str, list[int]]:
    """The request's resource limits, checked: known names, [soft, hard] integers."""
    if not isinstance(value, dict):
        raise _BadRequest("the request's 'rlimits' must be an object")
    for name, pair in value.items():
        if name not in RLIMITS:
            raise _BadRequest(f"the request names an unknown limit {name!r}")
        if not (isinstance(pair, list) and len(pair) == 2 and all(type(v) is int for v in pair)):
            raise _BadRequest(f"the request's limit {name} must be [soft, hard]")
    return value


def _apply_limits(limits: dict[str, list[int]], log_fd: int) -> None:
    """Take over the client's limits; one it may not have (above our hard limit) is logged."""
    import resource

    for name, pair in limits.items():
        if not hasattr(resource, name):
            continue
        which = getattr(resource, name)
        try:
            resource.setrlimit(which, (pair[0], pair[1]))
            continue
        except (ValueError, OSError) as exc:
            soft, hard = resource.getrlimit(which)
            log_line(log_fd, f"cannot set {name} to {pair} (have {[soft, hard]}): {exc}")
        infinity = resource.RLIM_INFINITY
        wanted = pair[0]
        if hard != infinity and (wanted == infinity or wanted > hard):
            wanted = hard  # as close as an unprivileged process may come
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(which, (wanted, hard))


def _take_client_place(request: dict[str, Any], client_pid: int, log_fd: int) -> list[str]:
    """In the worker: the client's environment, folder, umask, limits, sys.path; its argv."""
    argv = _strings(request.get("argv"), "argv")
    if "env" in request:
        environ = {
            k.encode(errors="surrogateescape"): v.encode(errors="surrogateescape")
            for k, v in _string_map(request["env"], "env").items()
        }
    else:
        if client_pid <= 0:
            raise _BadRequest("the client's pid is unknown here (another pid namespace)")
        with open(f"/proc/{client_pid}/environ", "rb") as fh:
            environ = parse_environ(fh.read())
    sys_path = _strings(request.get("sys_path"), "sys_path")
    umask = _field(request, "umask", int)
    if not 0 <= umask <= 0o777:
        raise _BadRequest(f"the request's umask {umask} is out of range")
    limits = _limits(request.get("rlimits"))
    os.chdir(_field(request, "cwd", str))
    _apply_limits(limits, log_fd)
    os.umask(umask)
    sys.path[:] = sys_path
    os.environb.clear()
    os.environb.update(environ)
    return argv


def _worker(conn: socket.socket, request: dict[str, Any], fds: list[int], client_pid: int) -> None:
    """In the forked child: become the client's process, run the command, report the code."""
    try:
        if len(fds) < 3:
            raise _BadRequest("the client sent no stdin, stdout and stderr")
        argv = _take_client_place(request, client_pid, 2)  # fd 2 is still the zygote log
    except (OSError, ValueError) as exc:
        log_line(2, f"worker: cannot take the client's place: {exc}")
        with contextlib.suppress(OSError):
            send_message(conn, {"started": False, "reason": str(exc)})
        os._exit(1)
    conn.settimeout(None)
    send_message(conn, {"started": True})
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    tty = os.isatty(1)
    sys.stdin = open(0, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False, buffering=1 if tty else -1)  # noqa: SIM115
    sys.stderr = open(  # noqa: SIM115
        2, "w", encoding="utf-8", errors="backslashreplace", closefd=False, buffering=1
    )
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
        except (OSError, ValueError):
            message = None
        if message is None:  # the client died: stop like a terminal hang-up would
            _thread.interrupt_main()
            return
        if message.get("signal") in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            _thread.interrupt_main()


def _text_output(fd: int) -> TextIO:
    return open(fd, "w", encoding="utf-8", errors="backslashreplace", closefd=False)


def _supervisor_entry(env: dict[str, str]) -> Callable[[str, str], int]:
    hook = env.get(TEST_SUPERVISOR_VARIABLE)
    module, _, attr = (hook or "ferry.supervisor:supervise_detached_child").partition(":")
    entry: Callable[[str, str], int] = getattr(importlib.import_module(module), attr)
    return entry


def _fresh_signals() -> None:
    """Dispositions of a freshly started Python: defaults, SIGINT raising, SIGPIPE ignored."""
    for signum in signal.valid_signals():
        if signum not in (signal.SIGKILL, signal.SIGSTOP):
            with contextlib.suppress(OSError, ValueError, RuntimeError):
                signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def _supervisor_child(request: dict[str, Any], env: dict[str, str]) -> None:
    """In the grandchild (every inherited socket already closed): become the run's supervisor."""
    import resource

    code = 1
    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
        out = os.open(request["log"], flags, 0o600)
        os.dup2(out, 1)
        os.dup2(out, 2)
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        ceiling = os.sysconf("SC_OPEN_MAX") if hard == resource.RLIM_INFINITY else hard
        os.closerange(3, max(ceiling, os.sysconf("SC_OPEN_MAX"), 1024))
        sys.stdout, sys.stderr = _text_output(1), _text_output(2)
        _apply_limits(request["rlimits"], 2)
        os.umask(request["umask"])
        os.environ.clear()
        os.environ.update(env)
        os.chdir(request["workspace"])
        _fresh_signals()
        code = _supervisor_entry(env)(request["workspace"], request["run"])
    except BaseException:
        import traceback

        with contextlib.suppress(BaseException):
            traceback.print_exc()
    with contextlib.suppress(BaseException):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 1)


def _start_supervisor(
    server: socket.socket, dir_fd: int, conn: socket.socket, request: dict[str, Any]
) -> None:
    """Double-fork the run's supervisor; reply with its pid (read back through a pipe)."""
    for name in ("workspace", "run", "log"):
        _field(request, name, str)
    for name in ("workspace", "log"):
        if not os.path.isabs(request[name]):
            raise _BadRequest(f"the request's {name!r} must be an absolute path")
    for folder in (request["workspace"], os.path.dirname(request["log"])):
        if not os.path.isdir(folder):
            raise _BadRequest(f"no folder {folder}")
    env = _string_map(request.get("env"), "env")
    if not 0 <= _field(request, "umask", int) <= 0o777:
        raise _BadRequest("the request's umask is out of range")
    _limits(request.get("rlimits"))
    _require_one_thread()
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(read_end)
            grandchild = os.fork()
            if grandchild == 0:
                server.close()
                conn.close()
                os.close(dir_fd)
                os.close(write_end)
                _supervisor_child(request, env)
            os.write(write_end, str(grandchild).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read()
    with contextlib.suppress(ChildProcessError):
        os.waitpid(child, 0)
    if not answer.isdigit():
        raise _BadRequest("the supervisor could not be forked")
    pid = int(answer)
    log_line(2, f"supervisor {pid} for run {request['run']} in {request['workspace']}")
    send_message(conn, {"started": True, "pid": pid})


def _require_one_thread() -> None:
    """A fork copies locks but only the calling thread: the zygote must stay single-threaded."""
    if threading.active_count() != 1:
        names = ", ".join(t.name for t in threading.enumerate())
        raise RuntimeError(f"the zygote has threads ({names}); it will not fork")


def _serve_one(server: socket.socket, dir_fd: int, conn: socket.socket, fingerprint: str) -> bool:
    """Answer one connection; False when this zygote should step aside."""
    try:
        client_pid, uid, _gid = peer_credentials(conn)
    except OSError:
        return True
    if uid != os.getuid():
        log_line(2, f"refused a connection from uid {uid} (pid {client_pid})")
        return True
    conn.settimeout(_RECEIVE_TIMEOUT)
    try:
        request, fds = _receive(conn)
    except (OSError, ValueError) as exc:
        log_line(2, f"dropped a request from pid {client_pid}: {exc}")
        return True
    try:
        if request.get("fingerprint") != fingerprint:
            log_line(2, f"pid {client_pid} comes from other ferry sources: stepping aside")
            send_message(conn, {"started": False, "reason": "stale"})
            return False
        op = request.get("op", "run")
        if op == "supervise":
            _start_supervisor(server, dir_fd, conn, request)
        elif op == "run":
            _require_one_thread()
            if os.fork() == 0:
                try:
                    server.close()
                    os.close(dir_fd)
                    _worker(conn, request, fds, client_pid)
                finally:
                    os._exit(1)
        else:
            raise _BadRequest(f"unknown request {op!r}")
    except _BadRequest as exc:
        log_line(2, f"refused a request from pid {client_pid}: {exc}")
        with contextlib.suppress(OSError):
            send_message(conn, {"started": False, "reason": str(exc)})
    except RuntimeError as exc:
        log_line(2, str(exc))
        with contextlib.suppress(OSError):
            send_message(conn, {"started": False, "reason": str(exc)})
        return False
    finally:
        for fd in fds:
            os.close(fd)
    return True


def _publish(dir_fd: int, folder: str, name: str) -> socket.socket:
    """Write the pid file, then bind and listen; the socket appears (0600) only when ready."""
    pid_name, pid_temp = f"{name}.pid", f".{name}.pid.{os.getpid()}.tmp"
    sock_temp = f".{name}.{os.getpid()}.tmp"
    for stale in (pid_temp, sock_temp):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(stale, dir_fd=dir_fd)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(pid_temp, flags, 0o600, dir_fd=dir_fd)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(str(os.getpid()))
    os.replace(pid_temp, pid_name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o077)
    try:
        server.bind(path_in(dir_fd, folder, sock_temp))
    finally:
        os.umask(previous)
    os.chmod(sock_temp, 0o600, dir_fd=dir_fd)  # bind made it just now; a name can't be reused
    server.listen(64)
    os.replace(sock_temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)  # atomic for clients
    return server


def serve(path: str, fingerprint: str, idle: float) -> None:
    os.umask(0o077)
    folder, name = os.path.split(os.path.abspath(path))
    try:
        dir_fd = open_private_dir(folder, create=True)
        log = open_log(dir_fd)
    except OSError as exc:
        print(f"ferry zygote: not serving: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    devnull = os.open(os.devnull, os.O_RDONLY)
    for fd, target in ((devnull, 0), (log, 1), (log, 2)):
        os.dup2(fd, target)
    os.close(devnull)
    os.close(log)
    log_line(2, f"zygote for {fingerprint} starting ({sys.executable})")
    tracked = package_fingerprint() == fingerprint  # else started by hand (tests): not tracked
    _preload()
    _require_one_thread()
    server = _publish(dir_fd, folder, name)
    inode = os.stat(name, dir_fd=dir_fd).st_ino
    signal.signal(signal.SIGCHLD, lambda *_: _reap())
    signal.signal(signal.SIGTERM, _stop)
    log_line(2, f"serving {path}")
    last = time.monotonic()
    try:
        while True:
            ready, _, _ = select.select([server], [], [], 5.0)
            if not ready:
                reason = _reason_to_exit(dir_fd, name, inode, fingerprint if tracked else None)
                if time.monotonic() - last > idle:
                    reason = "idle"
                if reason:
                    log_line(2, f"{reason}: exiting")
                    return
                continue
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            last = time.monotonic()
            with conn:
                try:
                    if not _serve_one(server, dir_fd, conn, fingerprint):
                        return
                except (OSError, ValueError) as exc:  # the client went away mid-answer
                    log_line(2, f"a request failed: {exc!r}")
    finally:
        with contextlib.suppress(OSError):
            if _still_ours(dir_fd, name, inode):
                os.unlink(name, dir_fd=dir_fd)
                os.unlink(f"{name}.pid", dir_fd=dir_fd)
        server.close()


def _stop(_signum: int, _frame: object) -> None:
    raise SystemExit(0)  # tidy: the socket and pid file are removed on the way out


def _reason_to_exit(dir_fd: int, name: str, inode: int, fingerprint: str | None) -> str | None:
    """Why this zygote is of no more use: no client would find it or run its code."""
    if not _still_ours(dir_fd, name, inode):
        return "the socket was taken over"
    if fingerprint is not None and package_fingerprint() != fingerprint:
        return "ferry's sources changed (clients look for a new zygote)"
    return None


def _still_ours(dir_fd: int, name: str, inode: int) -> bool:
    """False once another zygote has taken the socket name over."""
    try:
        return os.stat(name, dir_fd=dir_fd).st_ino == inode
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
