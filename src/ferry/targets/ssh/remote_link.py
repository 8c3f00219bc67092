"""The connection behind one run on an SSH host: SSH, the agent's session, SFTP, requests.

A run keeps one connection and may lose it (a dropped network, a restarted sshd); making it again
is cheap, because the host's agent daemon is remembered: the socket it listened on last time is
cached in the workspace's cache folder (``ssh/<target>.json``, keyed by the login, the work folder and the
agent's version), so the next connection reaches it at once instead of starting an agent. The
cache is only an optimisation: a stale or unreadable entry costs a fresh start, never a failure.

:class:`~ferry.targets.ssh.remote_run.RemoteRun` is a :class:`RemoteLink`: what the run does
with the connection (launch, follow, reconnect and resume) lives there; how it is made, asked
and dropped lives here.

Example::

    session = await link.connect()                    # hello facts in session.hello
    reply = await link.call("free_port")              # TargetRefused with the agent's error
    sftp = await link.sftp()                          # started on first use
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import asyncssh

from ferry.spec import WorkspaceServices
from ferry.targets.ssh.connect import open_connection
from ferry.targets.ssh.hostkeys import KNOWN_HOSTS_FILE
from ferry.targets.ssh.session import AgentSession, SessionLost, agent_bundle
from ferry.targets.ssh.settings import SshSettings


class RemoteLink:
    """The connection of one run to its host, made again after a drop with the same state."""

    def __init__(self, name: str, settings: SshSettings, workspace: WorkspaceServices) -> None:
        self.name = name
        self.settings = settings
        self.workspace = workspace
        self.conn: asyncssh.SSHClientConnection | None = None
        self.session: AgentSession | None = None
        self._sftp: asyncssh.SFTPClient | None = None

    def _on_event(self, header: dict[str, Any], payload: bytes) -> None:
        """A frame the agent sent unasked (data, log lines, the job's exit): the run's to keep."""
        raise NotImplementedError

    async def connect(self) -> AgentSession:
        known_hosts = self.workspace.path / KNOWN_HOSTS_FILE
        conn = await open_connection(self.name, self.settings, known_hosts)
        hint = self._daemon_socket()
        try:
            session = await AgentSession.start(conn, self.settings, self._on_event, hint)
        except BaseException:
            conn.close()
            raise
        socket_path = session.hello.get("socket")
        if socket_path and socket_path != hint:
            self._remember_daemon(str(socket_path))
        self.conn, self.session, self._sftp = conn, session, None
        return session

    def _daemon_cache(self) -> tuple[Path, str]:
        s = self.settings
        key = f"{s.username}@{s.address}:{s.ssh_port}:{s.work_dir}:{agent_bundle()[0]}"
        return self.workspace.cache_dir / "ssh" / f"{self.name}.json", key

    def _daemon_socket(self) -> str | None:
        """Where the host's agent daemon listened last time (cached in the workspace)."""
        path, key = self._daemon_cache()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return str(data["socket"]) if data.get("key") == key and data.get("socket") else None

    def _remember_daemon(self, socket_path: str) -> None:
        from ferry.agent.files import write_json

        path, key = self._daemon_cache()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json(str(path), {"key": key, "socket": socket_path})
        except OSError:
            pass  # only an optimisation

    async def sftp(self) -> asyncssh.SFTPClient:
        if self._sftp is None:
            assert self.conn is not None
            self._sftp = await asyncio.wait_for(
                self.conn.start_sftp_client(), self.settings.command_timeout
            )
        return self._sftp

    async def call(self, op: str, timeout: float | None = None, **params: Any) -> dict[str, Any]:
        if self.session is None:
            raise SessionLost(f"not connected to {self.settings.where}")
        return await self.session.call(op, timeout or self.settings.command_timeout, **params)

    def _drop_connection(self) -> None:
        if self.session is not None:
            self.session.close()
        if self.conn is not None:
            self.conn.close()
        self.session = self.conn = self._sftp = None
