"""Opening an SSH connection to a target: host-key policy, authentication, clear errors.

Host keys (:mod:`.hostkeys`): a pinned ``host_key`` is the only key accepted; otherwise the key
must match the workspace's ``ssh_known_hosts`` file or the user's ``known_hosts``. The key of a
host seen for the first time is never accepted silently: it must have the pinned
``host_key_fingerprint`` (it is then recorded in the workspace file), or the connection is
refused with :class:`~.hostkeys.UnknownHostKey`, whose message shows the fingerprint and how to
trust it. The check runs before authentication: no credential reaches an unverified host.

Authentication: the key file named by ``private_key_file`` (its passphrase from the environment),
else the user's default keys and SSH agent; a password from the environment when one is set.

Every failure names the cause and the fix: a host that does not answer, refuses the connection
or cannot be resolved is :class:`~ferry.errors.TargetUnavailable` (worth retrying); a login the
host refuses, an unreadable key file or an untrusted host key is
:class:`~ferry.errors.TargetRefused`.

Example::

    conn = await open_connection("vm", settings, ws.path / "ssh_known_hosts")
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path
from typing import Any

import asyncssh

from ferry.errors import TargetRefused, TargetUnavailable
from ferry.targets.ssh.hostkeys import HostKeyCheck, record
from ferry.targets.ssh.settings import SshSettings, secret, secret_names

# asyncssh narrates every connection at INFO; a supervisor's log needs only its warnings
logging.getLogger("asyncssh").setLevel(logging.WARNING)


async def open_connection(
    name: str, settings: SshSettings, workspace_known_hosts: Path
) -> asyncssh.SSHClientConnection:
    """Connect and authenticate within ``connect_timeout`` seconds (see the module docstring
    for the errors)."""
    options: dict[str, Any] = {
        "port": settings.ssh_port,
        "username": settings.username,
        "connect_timeout": settings.connect_timeout,
        "login_timeout": settings.connect_timeout,
        "keepalive_interval": settings.keepalive_seconds,
        "keepalive_count_max": 3,
        "config": None,  # the stored settings are the whole truth, not ~/.ssh/config
    }
    check = HostKeyCheck.for_target(name, settings, workspace_known_hosts)
    options["known_hosts"] = check.known_hosts
    options["client_factory"] = check.client_factory()
    options.update(_credentials(name, settings))
    try:
        conn = await asyncio.wait_for(
            asyncssh.connect(settings.address, **options), settings.connect_timeout + 5
        )
    except TimeoutError:
        raise TargetUnavailable(
            f"no answer from {settings.where} within {settings.connect_timeout:.0f} s "
            "(connect_timeout); is the host up and the port right?"
        ) from None
    except asyncssh.PermissionDenied as exc:
        raise TargetRefused(_auth_hint(name, settings, exc), target=name) from None
    except asyncssh.HostKeyNotVerifiable as exc:
        raise check.refusal(exc.reason) from None
    except asyncssh.Error as exc:
        raise TargetUnavailable(f"SSH to {settings.where} failed: {exc.reason}") from None
    except socket.gaierror as exc:
        raise TargetUnavailable(
            f"cannot resolve host {settings.address!r}: {exc.strerror}"
        ) from None
    except ConnectionRefusedError:
        raise TargetUnavailable(
            f"connection to {settings.where} refused: is sshd running there, and is ssh_port "
            f"{settings.ssh_port} right?"
        ) from None
    except OSError as exc:
        raise TargetUnavailable(
            f"cannot connect to {settings.where}: {exc.strerror or exc}"
        ) from None
    if check.to_record is not None:  # a first key with the pinned fingerprint
        try:
            record(workspace_known_hosts, settings, check.to_record)
        except OSError as exc:
            conn.close()
            raise TargetRefused(
                f"cannot record the host key in {workspace_known_hosts}: {exc}"
            ) from None
    _ack_at_once(conn)
    return conn


def _ack_at_once(conn: asyncssh.SSHClientConnection) -> None:
    """ACK every segment as soon as it is read, instead of up to 40 ms later.

    sshd leaves Nagle's algorithm on for non-interactive sessions: its next small packet waits
    for the ACK of the previous one, which Linux delays when we have nothing to send back. That
    stalls many exchanges by ~40 ms (opening a channel, a reply followed by data). Asking for a
    quick ACK after each read sends the pending ACK at once.
    """
    sock = conn.get_extra_info("socket")
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if sock is None or quickack is None:
        return
    received = conn.data_received

    def data_received(data: bytes, datatype: Any = None) -> None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
        except OSError:
            pass
        received(data, datatype)

    setattr(conn, "data_received", data_received)  # noqa: B010 - an instance override


def _credentials(name: str, settings: SshSettings) -> dict[str, Any]:
    out: dict[str, Any] = {}
    password = secret(name, "PASSWORD")
    if password:
        out["password"] = password
    if settings.private_key_file:
        path = os.path.expanduser(settings.private_key_file)
        passphrase = secret(name, "KEY_PASSPHRASE")
        try:
            out["client_keys"] = [asyncssh.read_private_key(path, passphrase)]
        except FileNotFoundError:
            raise TargetRefused(
                f"private key file {settings.private_key_file!r} does not exist on this machine"
            ) from None
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError, ValueError) as exc:
            names = " or ".join(secret_names(name, "KEY_PASSPHRASE"))
            hint = f"; if it is encrypted, set {names}" if passphrase is None else ""
            raise TargetRefused(
                f"cannot read private key {settings.private_key_file!r}: {exc}{hint}"
            ) from None
        except OSError as exc:
            raise TargetRefused(
                f"cannot read private key {settings.private_key_file!r}: {exc.strerror}"
            ) from None
    return out


def _auth_hint(name: str, settings: SshSettings, exc: asyncssh.Error) -> str:
    names = " or ".join(secret_names(name, "PASSWORD"))
    if settings.password_from_env and secret(name, "PASSWORD") is None:
        return (
            f"{settings.where} refused the login ({exc.reason}): target {name!r} was attached "
            f"with a password, which ferry never stores; set {names} in the environment that "
            "submits the run"
        )
    return (
        f"{settings.where} refused the login ({exc.reason}): give private_key_file=…, load the "
        f"key in an SSH agent, or set {names}"
    )
