"""The ``ferry`` console script: hand the command to a warm ferry process when one is running.

Starting Python and importing ferry's dependencies (SQLAlchemy above all) costs several hundred
milliseconds on a small machine — more than running a short script. So the console script is
this tiny client: it passes its argv, environment, working folder and its own stdin/stdout/stderr
(file descriptors, over a Unix socket) to a warm "zygote" process (:mod:`ferry.cli.zygote`) that
forks a worker to run the command exactly as this process would have, then exits with the
worker's exit code. Ctrl-C is forwarded. If no zygote answers, the command runs here as usual and
a zygote is started in the background for the next command; it exits after some idle minutes.

``FERRY_NO_DAEMON=1`` turns this off (the command always runs in-process).
Only the standard library is imported here, on purpose.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import struct
import sys

IDLE_SECONDS = 600
_HEADER = struct.Struct("!I")


def package_fingerprint() -> str:
    """Changes whenever a file of the installed ferry package changes (a stale zygote exits)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    digest = hashlib.sha256(sys.executable.encode())
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
    return digest.hexdigest()[:20]


def socket_path(fingerprint: str) -> str:
    base = os.environ.get("FERRY_ZYGOTE_DIR") or os.path.join(
        os.environ.get("XDG_RUNTIME_DIR") or "/tmp", f"ferry-zygote-{os.getuid()}"
    )
    return os.path.join(base, f"{fingerprint}.sock")


def send_message(
    conn: socket.socket, payload: dict[str, object], fds: list[int] | None = None
) -> None:
    data = json.dumps(payload).encode()
    message = _HEADER.pack(len(data)) + data
    if fds:
        import array

        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]
        sent = conn.sendmsg([message], ancillary)
        conn.sendall(message[sent:])
    else:
        conn.sendall(message)


def read_message(conn: socket.socket, buffer: bytearray) -> dict[str, object] | None:
    """The next length-prefixed JSON message, or None when the peer has gone."""
    while True:
        if len(buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buffer)
            if len(buffer) >= _HEADER.size + size:
                data = bytes(buffer[_HEADER.size : _HEADER.size + size])
                del buffer[: _HEADER.size + size]
                message: dict[str, object] = json.loads(data)
                return message
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buffer.extend(chunk)


def _via_zygote(argv: list[str], path: str, fingerprint: str) -> int | None:
    """Run the command in a warm worker; None when no usable zygote answered."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(0.5)
        conn.connect(path)
        conn.settimeout(None)
        send_message(
            conn,
            {"argv": argv, "env": dict(os.environ), "cwd": os.getcwd(), "fingerprint": fingerprint},
            [0, 1, 2],
        )
        buffer = bytearray()
        reply = read_message(conn, buffer)
        if not reply or reply.get("started") is not True:
            return None
    except OSError:
        conn.close()
        return None

    def forward(signum: int, _frame: object) -> None:
        try:
            send_message(conn, {"signal": signum})
        except OSError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    while True:
        try:
            message = read_message(conn, buffer)
        except InterruptedError:
            continue
        except OSError:
            message = None
        if message is None:
            return 1  # the worker died without a word
        if "exit" in message:
            code = message["exit"]
            return int(code) if isinstance(code, int) else 1


def _start_zygote(path: str, fingerprint: str) -> None:
    import subprocess

    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    subprocess.Popen(
        [sys.executable, "-m", "ferry.cli.zygote", path, fingerprint, str(IDLE_SECONDS)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def main() -> None:
    argv = sys.argv[1:]
    if os.environ.get("FERRY_NO_DAEMON") != "1" and sys.platform.startswith("linux"):
        fingerprint = package_fingerprint()
        path = socket_path(fingerprint)
        code = _via_zygote(argv, path, fingerprint)
        if code is not None:
            sys.exit(code)
        try:
            _start_zygote(path, fingerprint)
        except OSError:
            pass
    from ferry.cli.main import main as run_here

    run_here(argv)
