"""One conversation with ferry's agent on the remote host, over one SSH channel.

:meth:`AgentSession.start` first tries the agent daemon's Unix socket (a ``direct-streamlocal``
channel: no login shell, no interpreter start; see ``agent/daemon.py``) when a previous run
learnt where it is. Otherwise it runs a few lines of Python on the host that start the agent
``<work_dir>/bin/agent-<hash>/ferry_agent`` if it is there (which also starts the daemon for
next time), and otherwise say so, in which case the agent is uploaded once (SFTP, temporary
folder + rename) and started again. Requests are JSON
lines; a reader task turns the agent's frames into replies (:meth:`call`) and events (data, log
lines, the job's exit) handed to ``on_event``. When the channel closes, :attr:`closed` is set and
pending calls fail with :class:`SessionLost` (transient: the supervisor reconnects). A request
the agent answers with an error is :class:`~ferry.errors.TargetRefused`.

The agent is the neutral :mod:`ferry.agent` package, shipped as ``ferry_agent`` files
(:func:`ferry.agent.bundle.bundle`).

Example::

    session = await AgentSession.start(conn, settings, on_event)
    reply = await session.call("prepare", 60, run=run_id, snapshot=snapshot_id)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shlex
from collections.abc import Callable
from typing import Any

import asyncssh

from ferry.agent.bundle import PACKAGE, bundle
from ferry.errors import TargetRefused, TargetUnavailable
from ferry.targets.ssh.settings import SshSettings

EventHandler = Callable[[dict[str, Any], bytes], None]

# Runs on the remote host with `python -I -S -c` (isolated, no site: it starts in ~15 ms).
BOOTSTRAP = """\
import os, sys
if sys.version_info < (3, 8):
    sys.stderr.write("ferry needs Python 3.8 or newer on this host, not " + sys.version.split()[0])
    sys.exit(3)
w = os.path.abspath(os.path.expanduser(sys.argv[1]))
d = os.path.join(w, "bin", sys.argv[2])
if not os.path.isfile(os.path.join(d, "ferry_agent", "serve.py")):
    sys.stdout.write("ferry-agent-missing " + w + "\\n")
    sys.stdout.flush()
    sys.exit(97)
sys.path.insert(0, d)
from ferry_agent.serve import main
main(w, d)
"""
_NOISE_LIMIT = 200  # lines a chatty login shell may print before the agent says hello


class SessionLost(TargetUnavailable):
    """The channel to the agent closed (connection dropped, host rebooted, sshd restarted)."""


def agent_bundle() -> tuple[str, dict[str, bytes]]:
    """``("agent-<16 hex>", {file name: content})`` of the agent package shipped to hosts."""
    return bundle()


class AgentSession:
    """A running agent: its hello facts, calls with timeouts, events, closed state."""

    def __init__(
        self,
        reader: asyncssh.SSHReader[bytes],
        writer: asyncssh.SSHWriter[bytes],
        hello: dict[str, Any],
        on_event: EventHandler,
        where: str,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.hello = hello
        self.where = where
        self.closed = asyncio.Event()
        self._on_event = on_event
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._reader = asyncio.create_task(self._read_frames())

    @property
    def work_dir(self) -> str:
        return str(self.hello["work_dir"])

    @classmethod
    async def start(
        cls,
        conn: asyncssh.SSHClientConnection,
        settings: SshSettings,
        on_event: EventHandler,
        socket_hint: str | None = None,
    ) -> AgentSession:
        """Reach the agent: its daemon's socket when known, else start one on a new channel."""
        if socket_hint:
            session = await cls._attach(conn, settings, on_event, socket_hint)
            if session is not None:
                return session
        name, files = agent_bundle()
        command = " ".join(
            [
                "exec",
                shlex.quote(settings.interpreter_path),
                "-I -S -c",
                shlex.quote(BOOTSTRAP),
                shlex.quote(settings.work_dir),
                shlex.quote(name),
            ]
        )
        for attempt in (1, 2):
            try:
                process = await asyncio.wait_for(
                    conn.create_process(command, encoding=None), settings.command_timeout
                )
                first = await asyncio.wait_for(
                    _first_line(process.stdout), settings.command_timeout
                )
            except TimeoutError:
                raise TargetUnavailable(
                    f"ferry's agent on {settings.where} did not start within "
                    f"{settings.command_timeout:.0f} s"
                ) from None
            except (asyncssh.Error, OSError) as exc:
                raise SessionLost(
                    f"cannot start ferry's agent on {settings.where}: {exc}"
                ) from None
            if first.startswith(b'{"t":"hello"'):
                hello = json.loads(first)
                return cls(process.stdout, process.stdin, hello, on_event, settings.where)
            if first.startswith(b"ferry-agent-missing ") and attempt == 1:
                work_dir = first.decode("utf-8", "surrogateescape").split(" ", 1)[1].strip()
                process.close()
                await _upload_agent(conn, work_dir, name, files, settings)
                continue
            raise TargetRefused(await _start_failure(process, settings, first))
        raise TargetRefused(f"ferry's agent did not start on {settings.where}")  # pragma: no cover

    @classmethod
    async def _attach(
        cls,
        conn: asyncssh.SSHClientConnection,
        settings: SshSettings,
        on_event: EventHandler,
        path: str,
    ) -> AgentSession | None:
        """A session with the agent daemon listening at ``path``; None if it does not answer."""
        try:
            reader, writer = await asyncio.wait_for(
                conn.open_unix_connection(path), settings.command_timeout
            )
        except (TimeoutError, asyncssh.Error, OSError):
            return None
        try:
            first = await asyncio.wait_for(_first_line(reader), settings.command_timeout)
        except (TimeoutError, asyncssh.Error, OSError):
            first = b""
        if not first.startswith(b'{"t":"hello"'):
            writer.close()
            return None
        return cls(reader, writer, json.loads(first), on_event, settings.where)

    async def call(self, op: str, timeout: float, **params: Any) -> dict[str, Any]:
        """Send a request and wait up to ``timeout`` seconds for its reply."""
        if self.closed.is_set():
            raise SessionLost(f"the SSH connection to {self.where} is closed")
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        try:
            self.writer.write(_line({"id": ident, "op": op, **params}))
            reply = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise TargetUnavailable(
                f"{op} on {self.where} got no answer within {timeout:.0f} s"
            ) from None
        except (asyncssh.Error, OSError) as exc:
            raise SessionLost(f"the SSH connection to {self.where} broke: {exc}") from None
        finally:
            self._pending.pop(ident, None)
        if not reply.get("ok"):
            raise TargetRefused(f"{op} on {self.where} failed: {reply.get('error')}")
        result: dict[str, Any] = reply.get("result") or {}
        return result

    def notify(self, op: str, **params: Any) -> None:
        """Send a request that has no reply (``ping``); a broken channel is noticed elsewhere."""
        if self.closed.is_set():
            return
        try:
            self.writer.write(_line({"op": op, **params}))
        except (asyncssh.Error, OSError):
            pass

    async def _read_frames(self) -> None:
        stdout = self.reader
        try:
            while True:
                line = await stdout.readline()
                if not line:
                    break
                header = json.loads(line)
                payload = await stdout.readexactly(int(header["n"])) if "n" in header else b""
                if header.get("t") == "reply":
                    future = self._pending.get(int(header.get("id") or 0))
                    if future is not None and not future.done():
                        future.set_result(header)
                else:
                    self._on_event(header, payload)
        except (asyncssh.Error, OSError, asyncio.IncompleteReadError, ValueError, KeyError):
            pass
        finally:
            self.closed.set()
            lost = SessionLost(f"the SSH connection to {self.where} was lost")
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(lost)

    def close(self) -> None:
        """Close the channel: the agent sees end-of-input (a per-channel agent then exits)."""
        try:
            self.writer.write_eof()
        except (asyncssh.Error, OSError):
            pass
        self.writer.close()
        self._reader.cancel()


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


async def _first_line(reader: asyncssh.SSHReader[bytes]) -> bytes:
    """The agent's hello (or its 'missing' line), skipping what a login shell may print."""
    for _ in range(_NOISE_LIMIT):
        line = await reader.readline()
        if not line or line.startswith((b'{"t":"hello"', b"ferry-agent-missing ")):
            return line
    return b""


async def _start_failure(
    process: asyncssh.SSHClientProcess[bytes], settings: SshSettings, first: bytes
) -> str:
    try:
        err = await asyncio.wait_for(process.stderr.read(4096), 5)
        await asyncio.wait_for(process.wait_closed(), 5)
    except (TimeoutError, asyncssh.Error, OSError):
        err = b""
    text = (err or first).decode("utf-8", "replace").strip()
    status = process.exit_status
    if status == 127:
        return (
            f"no {settings.interpreter_path!r} on {settings.where} ({text}); install Python 3.8+ "
            "there or set the target's interpreter_path"
        )
    return f"ferry's agent failed to start on {settings.where} (exit {status}): {text[-2000:]}"


async def _upload_agent(
    conn: asyncssh.SSHClientConnection,
    work_dir: str,
    name: str,
    files: dict[str, bytes],
    settings: SshSettings,
) -> None:
    """Publish the agent package at ``<work_dir>/bin/<name>/ferry_agent`` (temp + rename)."""
    from ferry.targets.ssh.transfer import publish_folder

    async def write(sftp: asyncssh.SFTPClient, tmp: str) -> None:
        await sftp.mkdir(f"{tmp}/{PACKAGE}")
        for file_name, data in files.items():
            async with sftp.open(f"{tmp}/{PACKAGE}/{file_name}", "wb") as fh:
                await fh.write(data)

    try:
        async with conn.start_sftp_client() as sftp:
            await asyncio.wait_for(
                publish_folder(sftp, work_dir, f"{work_dir}/bin/{name}", write),
                settings.command_timeout,
            )
    except TimeoutError:
        raise TargetUnavailable(f"uploading ferry's agent to {settings.where} timed out") from None
    except (asyncssh.Error, OSError) as exc:
        raise TargetRefused(f"cannot upload ferry's agent to {settings.where}: {exc}") from None
