"""The ``ferry`` console script: hand the command to this user's warm ferry process, if trusted.

Starting Python and importing ferry's dependencies (SQLAlchemy above all) costs several hundred
milliseconds on a small machine — more than running a short script. So the console script is
this tiny client: it passes its argv, working folder, umask, resource limits, ``sys.path`` and its
own stdin/stdout/stderr (file descriptors, over a Unix socket) to a warm "zygote" process
(:mod:`ferry.cli.zygote`) that forks a worker to run the command as this process would have, then
exits with the worker's exit code. Ctrl-C is forwarded. If no zygote answers, the command runs
here as usual and a zygote is started in the background for the next command; it exits after
some idle minutes. The zygote also starts runs' supervisors (:func:`start_supervisor_via_zygote`):
a process it forks has no SQLite handle, thread or descriptor of the submitting process.

The socket is a trust boundary; these checks guard it:

- **A private folder.** The socket lives in ``$FERRY_ZYGOTE_DIR``, else
  ``${XDG_RUNTIME_DIR:-/tmp}/ferry-zygote-<uid>``. Client and zygote both open that folder with
  ``O_NOFOLLOW`` before use and require a real directory, owned by this uid, mode exactly 0700;
  an absent folder is created 0700. Any other folder (a symlink, another owner, a group or other
  bit) means the command runs in-process: nothing is sent and no zygote is started. Every later
  name is resolved through the opened folder (``/proc/self/fd/N/…``, ``dir_fd``), so the folder
  that was checked is the folder used, and a planted symlink is never followed.
- **Peer credentials.** The client checks the listening process's uid (``SO_PEERCRED``) before it
  sends a byte; the zygote closes any connection whose uid is not its own. The socket is 0600.
- **No secrets in transit.** The environment is not sent with a command: the worker reads the
  client's own ``/proc/<pid>/environ`` (pid from the peer credentials). It is sent only where
  /proc cannot give it (no /proc, or ``os.environ`` was changed in this process) and for a
  supervisor, whose submitter may have changed ``os.environ`` (a notebook). The zygote itself
  runs with a minimal environment (:func:`zygote_environment`).
- **Diagnostics** go to ``zygote.log`` in the folder (0600, truncated when over 1 MiB at start).

Commands that may prompt on a terminal (:data:`INTERACTIVE_COMMANDS`, when stdin is a tty) run
in-process, since a worker has no controlling terminal. ``FERRY_NO_DAEMON=1`` turns the zygote
off entirely. Only the standard library is imported here, on purpose (this file is the cost of
every command), and only its cheapest modules: messages are :mod:`marshal`'s, the socket is
``_socket``'s, signals ``_signal``'s, the fingerprint ``zlib``'s — ``json``, ``socket``,
``signal`` and ``hashlib`` would cost every command ~25 ms more (``enum`` and ``re`` above all).
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # no stub; `signal` costs ~5 ms (enum)
import _socket
import marshal
import os
import stat
import struct
import sys
import time
import zlib

TYPE_CHECKING = False  # typing costs ~10 ms to import; mypy treats this name as True
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Mapping

IDLE_SECONDS = 600
LOG_NAME = "zygote.log"
LOG_LIMIT = 1 << 20
#: Commands that may prompt when stdin is a terminal: they run in-process (first argv words).
INTERACTIVE_COMMANDS = frozenset({("target", "attach"), ("target", "status"), ("login",)})
#: Soft and hard limits a worker takes over from its client, where the platform has them.
RLIMITS = (
    "RLIMIT_NOFILE",
    "RLIMIT_CORE",
    "RLIMIT_AS",
    "RLIMIT_CPU",
    "RLIMIT_DATA",
    "RLIMIT_FSIZE",
    "RLIMIT_NPROC",
    "RLIMIT_STACK",
)
#: Variables that decide which modules the zygote imports: part of its fingerprint.
IMPORT_VARIABLES = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONNOUSERSITE",
    "PYTHONUSERBASE",
    "PYTHONSAFEPATH",
    "PYTHONPLATLIBDIR",
    "LD_LIBRARY_PATH",
)
_ZYGOTE_VARIABLES = (
    *IMPORT_VARIABLES,
    "PATH",
    "HOME",
    "LANG",
    "LANGUAGE",
    "XDG_RUNTIME_DIR",
    "TMPDIR",
    "FERRY_ZYGOTE_DIR",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONPYCACHEPREFIX",
)
_HEADER = struct.Struct("!I")
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
_MAX_MESSAGE = 64 << 20
_CONNECT_TIMEOUT = 0.5
_SUPERVISE_TIMEOUT = 30.0
#: zygotes this process started, kept so that a long-lived caller (a notebook) reaps them
_started: list[subprocess.Popen[bytes]] = []


class UnsafeFolderError(OSError):
    """The socket folder is not private to this user: nothing may go through it."""


def package_fingerprint(environ: Mapping[str, str] | None = None) -> str:
    """Changes with the interpreter, any file of the ferry package, or what decides imports.

    Two checksums (CRC-32 and Adler-32: 64 bits; ``zlib`` imports in well under a millisecond,
    ``hashlib`` in ~4): it tells a zygote's code from another's, and guards nothing."""
    env = os.environ if environ is None else environ
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    digest = _Checksum(sys.executable.encode())
    for name in IMPORT_VARIABLES:
        digest.update(f"{name}={env.get(name)}\0".encode(errors="surrogateescape"))
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name != "__pycache__":
                    stack.append(entry.path)
            elif entry.name.endswith(".py"):
                st = entry.stat()
                digest.update(f"{entry.path}\0{st.st_mtime_ns}\0{st.st_size}\0".encode())
    return digest.hexdigest()


class _Checksum:
    """CRC-32 and Adler-32 of everything given, as 16 hex digits."""

    def __init__(self, data: bytes) -> None:
        self.crc = zlib.crc32(data)
        self.adler = zlib.adler32(data)

    def update(self, data: bytes) -> None:
        self.crc = zlib.crc32(data, self.crc)
        self.adler = zlib.adler32(data, self.adler)

    def hexdigest(self) -> str:
        return f"{self.crc:08x}{self.adler:08x}"


def zygote_dir() -> str:
    """Absolute: a zygote runs from ``/``, and must find the folder its client meant."""
    base = os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
    folder = os.environ.get("FERRY_ZYGOTE_DIR") or os.path.join(base, f"ferry-zygote-{os.getuid()}")
    return folder if os.path.isabs(folder) else os.path.abspath(folder)


def socket_path(fingerprint: str) -> str:
    return os.path.join(zygote_dir(), f"{fingerprint}.sock")


def open_private_dir(folder: str, create: bool) -> int:
    """A descriptor of ``folder`` once it is proven private (a real directory, ours, 0700).

    Raises :class:`UnsafeFolderError` (an ``OSError``) saying what is wrong otherwise.
    """
    created = False
    if create:
        try:
            try:
                os.mkdir(folder, 0o700)
            except FileNotFoundError:
                os.makedirs(os.path.dirname(folder), mode=0o700, exist_ok=True)
                os.mkdir(folder, 0o700)
            created = True
        except FileExistsError:
            pass  # made meanwhile by another process, or long ago: checked like any other
    if stat.S_ISLNK(os.lstat(folder).st_mode):
        raise UnsafeFolderError(f"{folder} is a symbolic link")
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if created and st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) != 0o700:
            os.fchmod(fd, 0o700)  # our own new folder, narrowed by an odd umask
            st = os.fstat(fd)
        if st.st_uid != os.getuid():
            raise UnsafeFolderError(f"{folder} belongs to uid {st.st_uid}, not {os.getuid()}")
        if stat.S_IMODE(st.st_mode) != 0o700:
            raise UnsafeFolderError(f"{folder} has mode {stat.S_IMODE(st.st_mode):04o}, not 0700")
    except BaseException:
        os.close(fd)
        raise
    return fd


def path_in(dir_fd: int, folder: str, name: str) -> str:
    """A path to ``name`` that resolves through the checked folder's descriptor (no swap race)."""
    through = f"/proc/self/fd/{dir_fd}"
    return f"{through}/{name}" if os.path.isdir(through) else os.path.join(folder, name)


def open_log(dir_fd: int) -> int:
    """The zygote log in the checked folder: 0600, never through a link, cut when over 1 MiB."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(LOG_NAME, flags, 0o600, dir_fd=dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():
            raise UnsafeFolderError(f"{LOG_NAME} is not a regular file of ours")
        if stat.S_IMODE(st.st_mode) != 0o600:
            os.fchmod(fd, 0o600)
        if st.st_size > LOG_LIMIT:
            os.ftruncate(fd, 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def log_line(fd: int, message: str) -> None:
    """One timestamped line; a log that cannot be written must not break a command."""
    line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{os.getpid()}] {message}\n"
    try:
        os.write(fd, line.encode(errors="backslashreplace"))
    except OSError:
        pass


def peer_credentials(conn: _socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end, as the kernel recorded them."""
    pid, uid, gid = _UCRED.unpack(
        conn.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, _UCRED.size)
    )
    return pid, uid, gid


def process_umask() -> int:
    """This process's umask, read without changing it where /proc allows (threads may run)."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)  # a stricter mask for a moment, never a looser one
    os.umask(mask)
    return mask


def process_limits() -> dict[str, list[int]]:
    import resource

    return {
        name: list(resource.getrlimit(getattr(resource, name)))
        for name in RLIMITS
        if hasattr(resource, name)
    }


def parse_environ(raw: bytes) -> dict[bytes, bytes]:
    """A ``/proc/<pid>/environ`` image as Python builds ``os.environb`` (first entry wins)."""
    env: dict[bytes, bytes] = {}
    for entry in raw.split(b"\0"):
        key, sep, value = entry.partition(b"=")
        if sep and key:
            env.setdefault(key, value)
    return env


def zygote_environment() -> dict[str, str]:
    """What a zygote may know of its starter's environment: how to import, locale, folders."""
    return {
        name: value
        for name, value in os.environ.items()
        if name in _ZYGOTE_VARIABLES or name.startswith("LC_")
    }


def send_message(
    conn: _socket.socket, payload: Mapping[str, object], fds: list[int] | None = None
) -> None:
    """One length-prefixed message: ``payload`` (a dict of plain values) in :mod:`marshal`'s
    format. Both ends are the same interpreter (the fingerprint names it) and the same user
    (checked before a byte is read); ``json`` would cost the client ~10 ms of imports."""
    data = marshal.dumps(dict(payload))
    message = _HEADER.pack(len(data)) + data
    if fds:
        import array

        ancillary = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, array.array("i", fds).tobytes())]
        sent = conn.sendmsg([message], ancillary)
        conn.sendall(message[sent:])
    else:
        conn.sendall(message)


def read_message(conn: _socket.socket, buffer: bytearray) -> dict[str, object] | None:
    """The next length-prefixed message (a dict), or None when the peer has gone; ValueError
    for one that is too long or not a dict of plain values."""
    while True:
        if len(buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buffer)
            if size > _MAX_MESSAGE:
                raise ValueError(f"a message of {size} bytes is over the limit")
            if len(buffer) >= _HEADER.size + size:
                data = bytes(buffer[_HEADER.size : _HEADER.size + size])
                del buffer[: _HEADER.size + size]
                try:
                    message = marshal.loads(data)
                except (EOFError, TypeError, ValueError) as exc:
                    raise ValueError(f"a message that cannot be read: {exc}") from None
                if not isinstance(message, dict):
                    raise ValueError("a message must be a dict")
                return message
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buffer.extend(chunk)


def is_interactive(argv: list[str]) -> bool:
    """Whether the command (global options skipped) is one of :data:`INTERACTIVE_COMMANDS`."""
    words: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--":
            words.extend(args)
        elif arg in ("--workspace", "-w"):
            next(args, None)
        elif not arg.startswith("-"):
            words.append(arg)
        if len(words) >= 2:
            break
    return tuple(words[:1]) in INTERACTIVE_COMMANDS or tuple(words[:2]) in INTERACTIVE_COMMANDS


def _changed_environment() -> dict[str, str] | None:
    """``os.environ`` when a worker could not read it from /proc, else None (not sent)."""
    try:
        with open("/proc/self/environ", "rb") as fh:
            raw = fh.read()
    except OSError:
        return dict(os.environ)
    return None if parse_environ(raw) == dict(os.environb) else dict(os.environ)


def _connect(dir_fd: int, folder: str, fingerprint: str) -> _socket.socket | None:
    """A connection to the zygote, proven to be run by this user; None when none answers.
    (A plain ``_socket.socket``: the ``socket`` module costs the client ~10 ms of imports.)"""
    name = f"{fingerprint}.sock"
    conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        conn.settimeout(_CONNECT_TIMEOUT)
        conn.connect(path_in(dir_fd, folder, name))
        _pid, uid, _gid = peer_credentials(conn)
    except OSError:
        conn.close()
        return None
    if uid != os.getuid():
        conn.close()
        try:
            log = open_log(dir_fd)
        except OSError:
            return None
        log_line(log, f"client: {name} is served by uid {uid}, not {os.getuid()}; not used")
        os.close(log)
        return None
    conn.settimeout(None)
    return conn


def _via_zygote(argv: list[str], conn: _socket.socket, fingerprint: str) -> int | None:
    """Run the command in a warm worker; None when the zygote would not start one."""
    request: dict[str, object] = {
        "op": "run",
        "argv": argv,
        "cwd": os.getcwd(),
        "umask": process_umask(),
        "rlimits": process_limits(),
        "sys_path": sys.path,
        "fingerprint": fingerprint,
    }
    env = _changed_environment()
    if env is not None:
        request["env"] = env
    try:
        send_message(conn, request, [0, 1, 2])
        buffer = bytearray()
        reply = read_message(conn, buffer)
    except (OSError, ValueError):
        return None
    if not reply or reply.get("started") is not True:
        return None

    def forward(signum: int, _frame: object) -> None:
        try:
            send_message(conn, {"signal": signum})
        except OSError:
            pass

    for signum in (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP):
        _signal.signal(signum, forward)
    while True:
        try:
            message = read_message(conn, buffer)
        except InterruptedError:
            continue
        except (OSError, ValueError):
            message = None
        if message is None:
            return 1  # the worker died without a word
        if "exit" in message:
            code = message["exit"]
            return code if isinstance(code, int) else 1


def _start_zygote(dir_fd: int, folder: str, fingerprint: str) -> None:
    """A zygote in the background, with a minimal environment; its output goes to the log."""
    import subprocess

    _started[:] = [p for p in _started if p.poll() is None]
    log = open_log(dir_fd)
    try:
        log_line(log, f"client: starting a zygote for {fingerprint}")
        zygote = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ferry.cli.zygote",
                os.path.join(folder, f"{fingerprint}.sock"),
                fingerprint,
                str(IDLE_SECONDS),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd="/",
            env=zygote_environment(),
            umask=0o077,
            start_new_session=True,
            close_fds=True,
        )
        _started.append(zygote)
    finally:
        os.close(log)


def _daemon_allowed() -> bool:
    return os.environ.get("FERRY_NO_DAEMON") != "1" and sys.platform.startswith("linux")


def start_supervisor_via_zygote(
    workspace_path: str, run_id: str, env: Mapping[str, str], log_path: str
) -> int | None:
    """Ask the warm zygote to start the run's supervisor; its pid, or None when no usable zygote
    answered (the caller then spawns one).

    The zygote double-forks a child in its own session with only fds 0–2 (``/dev/null`` and
    ``log_path``), ``env`` as its environment, this process's umask and limits, and the
    workspace as its working folder. With no zygote this starts one for the next call (unless
    ``FERRY_NO_DAEMON=1``, which also keeps this from using one). None after the request was
    sent means the zygote did not confirm within 30 s, or refused; a zygote that dies
    mid-request is the one case where a supervisor may exist although None came back.
    """
    if not _daemon_allowed():
        return None
    fingerprint = package_fingerprint()
    folder = zygote_dir()
    try:
        dir_fd = open_private_dir(folder, create=True)
    except OSError:
        return None
    try:
        conn = _connect(dir_fd, folder, fingerprint)
        if conn is None:
            _start_zygote(dir_fd, folder, fingerprint)
            return None
        try:
            conn.settimeout(_SUPERVISE_TIMEOUT)
            request = {
                "op": "supervise",
                "workspace": os.path.abspath(workspace_path),
                "run": run_id,
                "env": {str(k): str(v) for k, v in env.items()},
                "umask": process_umask(),
                "rlimits": process_limits(),
                "log": os.path.abspath(log_path),
                "fingerprint": fingerprint,
            }
            send_message(conn, request)
            reply = read_message(conn, bytearray())
        finally:
            conn.close()
    except (OSError, ValueError):
        return None
    finally:
        os.close(dir_fd)
    pid = reply.get("pid") if reply and reply.get("started") is True else None
    return pid if isinstance(pid, int) and pid > 0 else None


def _run_through_zygote(argv: list[str]) -> int | None:
    """The command's exit code from a warm worker, or None: run it here."""
    fingerprint = package_fingerprint()
    folder = zygote_dir()
    try:
        dir_fd = open_private_dir(folder, create=True)
    except OSError:
        return None  # not private: in-process, nothing sent, no zygote started
    try:
        conn = _connect(dir_fd, folder, fingerprint)
        if conn is None:
            try:
                _start_zygote(dir_fd, folder, fingerprint)
            except OSError:
                pass
            return None
    finally:
        os.close(dir_fd)
    try:  # a zygote that refused (stale, no /proc) is not replaced: it says why in its log
        return _via_zygote(argv, conn, fingerprint)
    finally:
        conn.close()


def main() -> None:
    argv = sys.argv[1:]
    if _daemon_allowed() and not (is_interactive(argv) and os.isatty(0)):
        code = _run_through_zygote(argv)
        if code is not None:
            sys.exit(code)
    from ferry.cli.main import main as run_here

    run_here(argv)
