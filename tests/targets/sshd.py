"""A real OpenSSH server on a free loopback port, with throw-away ed25519 keys, for SSH tests.

``/usr/sbin/sshd -D -e -f <config>`` runs as root with ``UsePAM no`` and ``StrictModes no``; its
host key, authorized keys and pid file live in a temporary folder. Tests import the fixtures::

    from sshd import SshServer, ssh_server  # noqa: F401  (pytest finds the fixture by name)

    def test_something(ssh_server: SshServer) -> None:
        config = ssh_server.attach_config(work_dir=str(tmp / "remote"))

Without sshd the fixture FAILS with how to install it (Debian: ``apt-get install
openssh-server``, which ``make test`` does through scripts/sysdeps.sh).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry))
    return tree


class SshServer:
    """One sshd listening on 127.0.0.1:<port>, started and stopped by the tests."""

    def __init__(self, folder: Path) -> None:
        import asyncssh

        self.folder = folder
        self.port = free_port()
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        user_key = asyncssh.generate_private_key("ssh-ed25519")
        self.host_key_file = folder / "host_ed25519"
        self.user_key_file = folder / "user_ed25519"
        host_key.write_private_key(str(self.host_key_file))
        user_key.write_private_key(str(self.user_key_file))
        os.chmod(self.host_key_file, 0o600)
        os.chmod(self.user_key_file, 0o600)
        self.host_public_key = host_key.export_public_key().decode().strip()
        (folder / "authorized_keys").write_bytes(user_key.export_public_key())
        self.config_file = folder / "sshd_config"
        self.config_file.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.host_key_file}",
                    f"PidFile {folder / 'sshd.pid'}",
                    f"AuthorizedKeysFile {folder / 'authorized_keys'}",
                    "UsePAM no",
                    "StrictModes no",
                    "PermitRootLogin prohibit-password",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "Subsystem sftp internal-sftp",
                    "MaxStartups 100:30:200",
                    "MaxSessions 50",
                    "UseDNS no",
                    "PrintMotd no",
                    "LogLevel INFO",
                    "",
                ]
            )
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def user(self) -> str:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name

    def start(self) -> None:
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation folder
        log = open(self.folder / "sshd.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.config_file)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited at start:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    if sock.recv(64).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd did not listen on port {self.port}:\n{self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return (self.folder / "sshd.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def session_pids(self) -> list[int]:
        """Every process below the listening sshd: per-connection monitors, shells, agents."""
        if self.proc is None:
            return []
        tree, out, todo = _children(), [], [self.proc.pid]
        while todo:
            for child in tree.get(todo.pop(), []):
                out.append(child)
                todo.append(child)
        return out

    def drop_connections(self) -> int:
        """Kill the sshd processes serving connections (the clients see the connection drop)."""
        pids = self.session_pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return len(pids)

    def stop(self) -> None:
        self.drop_connections()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def attach_config(self, **overrides: Any) -> dict[str, Any]:
        """Settings for an ssh target on this server (host key pinned, fast lease)."""
        config: dict[str, Any] = {
            "address": "127.0.0.1",
            "ssh_port": self.port,
            "username": self.user,
            "private_key_file": str(self.user_key_file),
            "host_key": self.host_public_key,
            "lease_seconds": 3,
            "connect_timeout": 5,
        }
        config.update(overrides)
        return config


def _require_sshd() -> None:
    if not os.path.exists(SSHD):
        pytest.fail(
            f"{SSHD} is missing: the SSH target's tests need a real OpenSSH server; install it "
            "with `apt-get install openssh-server` (make test does it via scripts/sysdeps.sh)"
        )
    if os.getuid() != 0:
        pytest.fail("the SSH target's tests start sshd as root; run them as root (as CI does)")


@pytest.fixture(scope="module")
def ssh_server() -> Iterator[SshServer]:
    """A running sshd for the tests of one module."""
    _require_sshd()
    folder = Path(tempfile.mkdtemp(prefix="ferry-sshd-"))
    server = SshServer(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def remote_root() -> Iterator[Path]:
    """The remote host's side of the tests (same machine): an awkward folder for work_dir."""
    folder = Path(tempfile.mkdtemp(prefix="ferry-remote-"))
    awkward = folder / "remote wörk 'dir' \"x\""
    awkward.mkdir()
    try:
        yield awkward
    finally:
        shutil.rmtree(folder, ignore_errors=True)
