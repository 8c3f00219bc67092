"""Opening an SSH connection to a target: host-key policy, authentication, clear errors.

Host keys: a pinned ``host_key`` is the only key accepted; otherwise the key must match the
workspace's ``ssh_known_hosts`` file or the user's ``known_hosts``. With the ``accept-new``
policy (the default, like OpenSSH's ``StrictHostKeyChecking=accept-new``) the key of a host seen
for the first time is recorded in the workspace file, and must match from then on.

Authentication: the key file named by ``private_key_file`` (its passphrase from the environment),
else the user's default keys and SSH agent; a password from the environment when one is set.

Every failure becomes a :class:`~ferry.errors.TargetError` that names the cause and the fix.

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

from ferry.errors import TargetError
from ferry.targets.ssh.settings import SshSettings, secret, secret_names

# asyncssh narrates every connection at INFO; a supervisor's log needs only its warnings
logging.getLogger("asyncssh").setLevel(logging.WARNING)


async def open_connection(
    name: str, settings: SshSettings, workspace_known_hosts: Path
) -> asyncssh.SSHClientConnection:
    """Connect and authenticate within ``connect_timeout`` seconds, or raise TargetError."""
    options: dict[str, Any] = {
        "port": settings.ssh_port,
        "username": settings.username,
        "connect_timeout": settings.connect_timeout,
        "login_timeout": settings.connect_timeout,
        "keepalive_interval": settings.keepalive_seconds,
        "keepalive_count_max": 3,
        "config": None,  # the stored settings are the whole truth, not ~/.ssh/config
    }
    known, record_new = _host_keys(settings, workspace_known_hosts)
    options["known_hosts"] = known
    options.update(_credentials(name, settings))
    try:
        conn = await asyncio.wait_for(
            asyncssh.connect(settings.address, **options), settings.connect_timeout + 5
        )
    except TimeoutError:
        raise TargetError(
            f"no answer from {settings.where} within {settings.connect_timeout:.0f} s "
            "(connect_timeout); is the host up and the port right?"
        ) from None
    except asyncssh.PermissionDenied as exc:
        raise TargetError(_auth_hint(name, settings, exc)) from None
    except asyncssh.HostKeyNotVerifiable as exc:
        raise TargetError(
            f"the host key of {settings.where} is not the one ferry trusts ({exc.reason}); if "
            f"the host was reinstalled, remove its line from {workspace_known_hosts} (or "
            f"{settings.known_hosts}), or pin the new key with host_key='ssh-ed25519 …'"
        ) from None
    except asyncssh.Error as exc:
        raise TargetError(f"SSH to {settings.where} failed: {exc.reason}") from None
    except socket.gaierror as exc:
        raise TargetError(f"cannot resolve host {settings.address!r}: {exc.strerror}") from None
    except ConnectionRefusedError:
        raise TargetError(
            f"connection to {settings.where} refused: is sshd running there, and is ssh_port "
            f"{settings.ssh_port} right?"
        ) from None
    except OSError as exc:
        raise TargetError(f"cannot connect to {settings.where}: {exc.strerror or exc}") from None
    if record_new:
        _remember(conn, settings, workspace_known_hosts)
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


def _host_keys(settings: SshSettings, workspace_file: Path) -> tuple[Any, bool]:
    """The ``known_hosts`` argument for asyncssh, and whether a new key is to be recorded."""
    if settings.host_key:
        return ([asyncssh.import_public_key(settings.host_key)], [], []), False
    files = [str(workspace_file)] if workspace_file.is_file() else []
    user_file = os.path.expanduser(settings.known_hosts)
    if os.path.isfile(user_file):
        files.append(user_file)
    if files:
        try:
            addr = socket.gethostbyname(settings.address)
        except OSError:
            addr = settings.address
        try:
            matched = asyncssh.match_known_hosts(
                asyncssh.read_known_hosts(files), settings.address, addr, settings.ssh_port
            )
        except (OSError, ValueError) as exc:
            raise TargetError(f"cannot read known hosts ({', '.join(files)}): {exc}") from None
        if matched[0] or matched[1]:
            return (matched[0], matched[1], matched[2]), False
    if settings.host_key_policy == "accept-new":
        return None, True
    raise TargetError(
        f"{settings.address} is not in {settings.known_hosts}: add its key (ssh-keyscan -p "
        f"{settings.ssh_port} {settings.address} >> {settings.known_hosts}), pin it with "
        "host_key='ssh-ed25519 …', or set host_key_policy=accept-new"
    )


def _remember(conn: asyncssh.SSHClientConnection, settings: SshSettings, path: Path) -> None:
    key = conn.get_server_host_key()
    if key is None:
        return
    host = (
        settings.address if settings.ssh_port == 22 else f"[{settings.address}]:{settings.ssh_port}"
    )
    line = f"{host} {key.export_public_key().decode().strip()}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)


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
            raise TargetError(
                f"private key file {settings.private_key_file!r} does not exist on this machine"
            ) from None
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError, ValueError) as exc:
            names = " or ".join(secret_names(name, "KEY_PASSPHRASE"))
            hint = f"; if it is encrypted, set {names}" if passphrase is None else ""
            raise TargetError(
                f"cannot read private key {settings.private_key_file!r}: {exc}{hint}"
            ) from None
        except OSError as exc:
            raise TargetError(
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
