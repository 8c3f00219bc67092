"""Which host keys an SSH target trusts, and how a first key gets trusted (never silently).

A host's key is trusted when it is

* the pinned ``host_key`` (a whole public key line: then it is the only key accepted);
* listed for the host in the workspace's ``ssh_known_hosts`` or the user's ``known_hosts``;
* or, for a host neither file knows, the key whose SHA256 fingerprint is pinned with
  ``host_key_fingerprint`` (``ferry target attach … --host-key-fingerprint SHA256:…``); it is
  then recorded in the workspace file.

Any other key of a host that is not known yet is refused with :class:`UnknownHostKey`, whose
message shows the key's fingerprint and the ways to trust it: in a terminal ``ferry target
attach`` / ``status`` / ``trust`` show the fingerprint and ask; elsewhere (the API, a run's
supervisor, CI) pin the fingerprint or run ``ferry target trust NAME``. A key that differs from
the one on record is refused (:class:`HostKeyChanged`) and never replaced automatically.

Example::

    found = asyncio.run(fetch_host_key(settings, ws.path / "ssh_known_hosts"))  # no login
    verdict = judge(found, settings, ws.path / "ssh_known_hosts")
    if verdict == "unknown" and input(f"trust {fingerprint(found)}? ") == "yes":
        record(ws.path / "ssh_known_hosts", settings, found)
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import asyncssh

from ferry.errors import TargetRefused, TargetUnavailable
from ferry.targets.ssh.settings import SshSettings, check_fingerprint

KNOWN_HOSTS_FILE = "ssh_known_hosts"  # in the workspace folder
#: pinned/known/fingerprint: trusted; unknown: to be confirmed; changed: another key is on
#: record (or pinned); mismatch: the key lacks the pinned fingerprint.
Verdict = Literal["pinned", "known", "fingerprint", "unknown", "changed", "mismatch"]


class UnknownHostKey(TargetRefused):
    """The host is not known yet and its key was not confirmed; the message says how to."""

    def __init__(self, target: str, settings: SshSettings, key: asyncssh.SSHKey) -> None:
        self.key = key
        self.fingerprint = fingerprint(key)
        super().__init__(
            f"the host key of {settings.where} is not known yet; its fingerprint is "
            f"{self.fingerprint} ({key.get_algorithm()}). Compare it with the host's own "
            "(`ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` there), then trust it: "
            f"`ferry target trust {target}` (asks in a terminal), or pin it with "
            f"`ferry target attach {target} … --host-key-fingerprint {self.fingerprint}` "
            f"(host_key_fingerprint='{self.fingerprint}' in the attach configuration)",
            target=target,
        )


class HostKeyChanged(TargetRefused):
    """The host presented a key other than the one on record (or the pinned one)."""


@dataclass
class HostKeyCheck:
    """The host-key side of one connection: what to trust, and what the validator saw.

    asyncssh accepts on its own a key in :attr:`known_hosts`; for any other key it asks
    :meth:`validate` (before authenticating, so no credential ever reaches an unverified host).
    """

    target: str
    settings: SshSettings
    workspace_file: Path
    known_hosts: Any = None
    host_known: bool = False
    seen: asyncssh.SSHKey | None = None
    to_record: asyncssh.SSHKey | None = None
    files: list[str] = field(default_factory=list)

    @classmethod
    def for_target(cls, target: str, settings: SshSettings, workspace_file: Path) -> HostKeyCheck:
        check = cls(target, settings, workspace_file)
        if settings.host_key:
            check.known_hosts = ([asyncssh.import_public_key(settings.host_key)], [], [])
            check.host_known = True
            return check
        keys, cas, revoked, check.files = _listed(settings, workspace_file)
        check.known_hosts = (keys, cas, revoked)
        check.host_known = bool(keys or cas)
        return check

    def validate(self, key: asyncssh.SSHKey) -> bool:
        """A key asyncssh did not find trusted: accept it only when it has the pinned
        fingerprint and the host is not known with another key."""
        self.seen = key
        if self.host_known or not self.settings.host_key_fingerprint:
            return False
        if fingerprint(key) != self.settings.host_key_fingerprint:
            return False
        self.to_record = key
        return True

    def refusal_for(self, key: asyncssh.SSHKey) -> TargetRefused:
        """The error for ``key``, read outside a connection (by :func:`trust`)."""
        self.seen = key
        return self.refusal("not trusted")

    def refusal(self, reason: str) -> TargetRefused:
        """The error for a host key asyncssh refused, saying what to do."""
        where = self.settings.where
        key = self.seen
        seen = f" (it presented {fingerprint(key)})" if key is not None else ""
        if self.settings.host_key:
            return HostKeyChanged(
                f"the host key of {where} is not the pinned host_key{seen}; if the host was "
                "reinstalled, pin its new key"
            )
        if self.host_known:
            return HostKeyChanged(
                f"the host key of {where} is not the one ferry trusts{seen} ({reason}); if the "
                f"host was reinstalled, remove its line from {' or '.join(self.files)}, then "
                f"trust the new key (`ferry target trust {self.target}`)"
            )
        if key is not None and self.settings.host_key_fingerprint:
            return HostKeyChanged(
                f"the host key of {where} does not have the pinned fingerprint "
                f"{self.settings.host_key_fingerprint}{seen}; check the host, or fix "
                "host_key_fingerprint"
            )
        if self.settings.host_key_policy == "known-hosts":
            return TargetRefused(
                f"{self.settings.address} is not in {self.settings.known_hosts}{seen}: add its key "
                f"(ssh-keyscan -p {self.settings.ssh_port} {self.settings.address} >> "
                f"{self.settings.known_hosts}), or pin it with host_key_fingerprint='SHA256:…'"
            )
        if key is not None:
            return UnknownHostKey(self.target, self.settings, key)
        return TargetRefused(f"the host key of {where} was refused ({reason})")

    def client_factory(self) -> type[asyncssh.SSHClient]:
        check = self

        class _Client(asyncssh.SSHClient):
            def validate_host_public_key(
                self, host: str, addr: str, port: int, key: asyncssh.SSHKey
            ) -> bool:
                return check.validate(key)

        return _Client


@dataclass(frozen=True)
class Trusted:
    """The outcome of :func:`trust`: the host's key and whether it was recorded just now."""

    fingerprint: str
    algorithm: str
    verdict: Verdict
    recorded: bool
    known_hosts_file: Path


def trust(
    target: str,
    config: Mapping[str, Any],
    workspace_path: Path,
    *,
    expected: str | None = None,
    confirm: Callable[[UnknownHostKey], bool] | None = None,
) -> Trusted:
    """Make the host's key trusted for ``target`` (``ferry target trust``, ``attach``).

    Reads the key the host presents (no login). A key already trusted is reported as such; a
    key of a host not known yet is recorded in the workspace's ``ssh_known_hosts`` when it has
    the ``expected`` fingerprint (or the pinned ``host_key_fingerprint``), or when ``confirm``
    (shown the fingerprint) says yes. Otherwise raises :class:`UnknownHostKey`; a key other
    than the one on record raises :class:`HostKeyChanged`.
    """
    settings = SshSettings.from_config(config)
    if expected:
        settings = replace(settings, host_key_fingerprint=check_fingerprint(expected))
    file = Path(workspace_path) / KNOWN_HOSTS_FILE
    key = asyncio.run(fetch_host_key(settings, file))
    verdict = judge(key, settings, file)
    found = fingerprint(key)
    if verdict in ("changed", "mismatch"):
        raise HostKeyCheck.for_target(target, settings, file).refusal_for(key)
    recorded = False
    if verdict == "unknown":
        unknown = UnknownHostKey(target, settings, key)
        if confirm is None or not confirm(unknown):
            raise unknown
    if verdict in ("unknown", "fingerprint"):
        record(file, settings, key)
        recorded = True
    return Trusted(found, key.get_algorithm(), verdict, recorded, file)


def fingerprint(key: asyncssh.SSHKey) -> str:
    """``SHA256:…`` as ``ssh-keygen -l`` prints it."""
    return str(key.get_fingerprint("sha256"))


def judge(key: asyncssh.SSHKey, settings: SshSettings, workspace_file: Path) -> Verdict:
    """How ``key``, presented by the target's host, stands (for ``trust`` and ``attach``)."""
    check = HostKeyCheck.for_target("", settings, workspace_file)
    if settings.host_key:
        return "pinned" if key in check.known_hosts[0] else "changed"
    if key in check.known_hosts[0]:
        return "known"
    if check.host_known:
        return "changed"
    if settings.host_key_fingerprint:
        return "fingerprint" if fingerprint(key) == settings.host_key_fingerprint else "mismatch"
    return "unknown"


def record(workspace_file: Path, settings: SshSettings, key: asyncssh.SSHKey) -> None:
    """Add the host's key to the workspace's known-hosts file (private to the user)."""
    line = f"{host_pattern(settings)} {key.export_public_key().decode().strip()}\n"
    fd = os.open(workspace_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    with open(fd, "a", encoding="utf-8") as fh:
        fh.write(line)


def host_pattern(settings: SshSettings) -> str:
    """The host as known_hosts names it: ``host``, or ``[host]:port`` off port 22."""
    if settings.ssh_port == 22:
        return settings.address
    return f"[{settings.address}]:{settings.ssh_port}"


async def fetch_host_key(settings: SshSettings, workspace_file: Path) -> asyncssh.SSHKey:
    """The key the host presents, without logging in (for ``trust`` and ``attach``).

    When the host is known, the key types on record are asked for, as a connection does.
    """
    check = HostKeyCheck.for_target("", settings, workspace_file)
    algs: Sequence[str] | tuple[()] = ()
    if check.known_hosts and check.known_hosts[0]:
        algs = [a.decode() for k in check.known_hosts[0] for a in k.sig_algorithms]
    try:
        key = await asyncio.wait_for(
            asyncssh.get_server_host_key(
                settings.address, settings.ssh_port, server_host_key_algs=algs, config=None
            ),
            settings.connect_timeout,
        )
    except TimeoutError:
        raise TargetUnavailable(
            f"no answer from {settings.where} within {settings.connect_timeout:.0f} s"
        ) from None
    except (OSError, asyncssh.Error) as exc:
        raise TargetUnavailable(
            f"cannot reach {settings.where} to read its host key: {exc}"
        ) from None
    if key is None:
        raise TargetRefused(f"{settings.where} presented no host key")
    return key


def _listed(
    settings: SshSettings, workspace_file: Path
) -> tuple[list[asyncssh.SSHKey], list[asyncssh.SSHKey], list[asyncssh.SSHKey], list[str]]:
    """Keys, CA keys and revoked keys listed for the host in the known-hosts files."""
    files = [str(workspace_file)] if workspace_file.is_file() else []
    user_file = os.path.expanduser(settings.known_hosts)
    if os.path.isfile(user_file):
        files.append(user_file)
    if not files:
        return [], [], [], files
    try:
        addr = socket.gethostbyname(settings.address)
    except OSError:
        addr = settings.address
    try:
        matched = asyncssh.match_known_hosts(
            asyncssh.read_known_hosts(files), settings.address, addr, settings.ssh_port
        )
    except (OSError, ValueError) as exc:
        raise TargetRefused(f"cannot read known hosts ({', '.join(files)}): {exc}") from None
    return list(matched[0]), list(matched[1]), list(matched[2]), files
