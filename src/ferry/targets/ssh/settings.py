"""The settings ferry keeps for a machine reached over SSH, checked (no connection, no asyncssh).

The public builder is the reference's ``RemoteCompute`` (:mod:`ferry.compute`); it and
``ferry target attach --type ssh`` give their settings to :func:`attach_settings` /
:func:`validate_config` here. Example::

    settings = SshSettings.from_config({"address": "10.0.0.4", "username": "me"})
    settings.where        # 'me@10.0.0.4:22'

What is stored (``ferry target show vm``) never holds a password or a passphrase. At run time they
come from the environment of the process that submits the run (its supervisor inherits it):
``FERRY_SSH_PASSWORD_<NAME>`` or ``FERRY_SSH_PASSWORD``, and ``FERRY_SSH_KEY_PASSPHRASE_<NAME>``
or ``FERRY_SSH_KEY_PASSPHRASE`` (``NAME`` is the target's name upper-cased, ``-`` → ``_``), or
from keys held by an SSH agent (``SSH_AUTH_SOCK``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from ferry.errors import ConfigError

HOST_KEY_POLICIES = ("confirm", "known-hosts")
#: "accept-new" was the default before a first key had to be confirmed; stored targets still
#: carry it, and it now means "confirm" (a first key is never accepted silently).
_OLD_POLICIES = {"accept-new": "confirm"}
_REFERENCE_ONLY = ("subscription_id", "resource_group", "vm_name", "resource_id")
_SECRETS = ("password", "private_key_passphrase")
_FINGERPRINT = re.compile(r"SHA256:([A-Za-z0-9+/]{43})=?")


@dataclass(frozen=True)
class SshSettings:
    """An SSH target's stored settings (types checked, defaults filled, no secrets)."""

    address: str
    username: str
    ssh_port: int = 22
    private_key_file: str = ""
    work_dir: str = "~/.ferry-remote"
    interpreter_path: str = "python3"
    #: "confirm": a host not known yet shows its key's fingerprint, which must be confirmed
    #: (in a terminal, by ``ferry target trust`` or by ``host_key_fingerprint``) and is then
    #: recorded in the workspace (ssh_known_hosts); "known-hosts": the key must already be in
    #: a known-hosts file (or pinned). See :mod:`ferry.targets.ssh.hostkeys`.
    host_key_policy: str = "confirm"
    known_hosts: str = "~/.ssh/known_hosts"
    #: a pinned public key ("ssh-ed25519 AAAA…"): only this key is accepted
    host_key: str = ""
    #: a pinned fingerprint ("SHA256:…"): a first key with it is accepted and recorded
    host_key_fingerprint: str = ""
    connect_timeout: float = 10.0
    command_timeout: float = 60.0
    build_timeout: float = 3600.0
    keepalive_seconds: float = 5.0
    #: the remote job is stopped this long after its supervisor stopped following it
    lease_seconds: float = 30.0
    #: how long a dropped connection is retried during a run (0: as long as the lease)
    reconnect_seconds: float = 0.0
    #: "" finds uv on the host, "none" never uses it, else the path of uv there
    uv: str = ""
    #: the host's Docker engine for Docker runs ("": the host's DOCKER_HOST, else its default
    #: socket, as Docker's clients find it there); a unix:// socket on the host
    docker_host: str = ""
    #: Open MPI's mpirun on the host for MPI jobs ("": mpirun.openmpi, else mpirun, on the
    #: host's PATH); a path there, for an Open MPI outside that PATH (/opt/openmpi/bin/mpirun)
    mpirun: str = ""
    password_from_env: bool = False
    passphrase_from_env: bool = False
    subscription_id: str | None = None
    resource_group: str | None = None
    vm_name: str | None = None
    resource_id: str | None = None

    @property
    def where(self) -> str:
        return f"{self.username}@{self.address}:{self.ssh_port}"

    @property
    def reconnect_budget(self) -> float:
        return self.reconnect_seconds or self.lease_seconds

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SshSettings:
        """Check and convert a stored or user-given configuration (CLI values are strings)."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(config) - set(known) - set(_SECRETS))
        if unknown:
            raise ConfigError(
                f"unknown ssh target setting(s) {', '.join(unknown)}; known settings: "
                f"{', '.join(sorted(known))}"
            )
        values: dict[str, Any] = {}
        for key, value in config.items():
            if key in _SECRETS or value is None:
                continue
            values[key] = _convert(key, value, known[key].type)
        policy = values.get("host_key_policy")
        if policy in _OLD_POLICIES:
            values["host_key_policy"] = _OLD_POLICIES[policy]
        if values.get("host_key_fingerprint"):
            values["host_key_fingerprint"] = check_fingerprint(values["host_key_fingerprint"])
        for required in ("address", "username"):
            if not str(values.get(required) or "").strip():
                raise ConfigError(
                    f"an ssh target needs {required}=… (ferry reaches machines by address; "
                    "give address='host or IP' and username='user')"
                )
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        if not 1 <= self.ssh_port <= 65535:
            raise ConfigError(f"ssh_port {self.ssh_port} is not a TCP port (1-65535)")
        if self.host_key_policy not in HOST_KEY_POLICIES:
            raise ConfigError(
                f"host_key_policy {self.host_key_policy!r} is not one of "
                f"{', '.join(HOST_KEY_POLICIES)} (or pin a key with "
                "host_key_fingerprint='SHA256:…')"
            )
        for key in ("connect_timeout", "command_timeout", "lease_seconds", "keepalive_seconds"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key} must be a positive number of seconds")
        if not self.work_dir.strip():
            raise ConfigError("work_dir must name a folder on the remote host")


def _convert(key: str, value: Any, kind: Any) -> Any:
    text = str(kind)
    try:
        if text == "int":
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if text == "float":
            return float(value)
        if text == "bool":
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
    except (TypeError, ValueError):
        expected = {"int": "a whole number", "float": "a number"}.get(text, text)
        raise ConfigError(f"ssh target setting {key}={value!r} is not {expected}") from None
    return str(value)


def check_fingerprint(text: str) -> str:
    """A ``SHA256:<43 base64 characters>`` fingerprint, normalised; ConfigError otherwise."""
    match = _FINGERPRINT.fullmatch(text.strip())
    if match is None:
        raise ConfigError(
            f"host_key_fingerprint {text!r} is not a SHA256 fingerprint like 'SHA256:"
            "uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s' (ssh-keygen -lf KEY.pub prints it)"
        )
    with contextlib.suppress(binascii.Error):
        if len(base64.b64decode(match.group(1) + "=")) == 32:
            return f"SHA256:{match.group(1)}"
    raise ConfigError(f"host_key_fingerprint {text!r} does not decode to a SHA-256 digest")


def secret_names(target_name: str, what: str) -> tuple[str, str]:
    """``("FERRY_SSH_PASSWORD_MY_VM", "FERRY_SSH_PASSWORD")`` for target ``my-vm``."""
    suffix = "".join(c if c.isalnum() else "_" for c in target_name.upper())
    return f"FERRY_SSH_{what}_{suffix}", f"FERRY_SSH_{what}"


def secret(target_name: str, what: str) -> str | None:
    """A password (``what="PASSWORD"``) or key passphrase (``"KEY_PASSPHRASE"``) from the env."""
    for name in secret_names(target_name, what):
        value = os.environ.get(name)
        if value:
            return value
    return None


def attach_settings(
    config: Mapping[str, Any], *, password: bool = False, passphrase: bool = False
) -> dict[str, Any]:
    """The settings to attach, checked: a password or key passphrase given (never stored) is
    replaced by a ``*_from_env`` flag and a warning saying where to give it at run time."""
    data = {k: v for k, v in config.items() if k not in _SECRETS}
    password = password or bool(config.get("password"))
    passphrase = passphrase or bool(config.get("private_key_passphrase"))
    if password:
        data["password_from_env"] = True
    if passphrase:
        data["passphrase_from_env"] = True
    if password or passphrase:
        warnings.warn(
            "ferry never stores SSH passwords or key passphrases; give them at run time in "
            "FERRY_SSH_PASSWORD[_<TARGET>] / FERRY_SSH_KEY_PASSPHRASE[_<TARGET>], or use an "
            "SSH agent",
            stacklevel=3,
        )
    return SshSettings.from_config(data).to_dict()


def validate_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """What to store for an ssh target: checked settings, secrets replaced by *_from_env flags;
    the key file must exist here, and a pinned host key must parse (with asyncssh)."""
    settings = SshSettings.from_config(attach_settings(config))
    if settings.private_key_file:
        path = os.path.expanduser(settings.private_key_file)
        if not os.path.isfile(path):
            raise ConfigError(
                f"private key file {settings.private_key_file!r} does not exist on this machine"
            )
    if settings.host_key:
        import asyncssh

        try:
            key = asyncssh.import_public_key(settings.host_key)
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise ConfigError(f"host_key is not an OpenSSH public key line: {exc}") from None
        pinned = settings.host_key_fingerprint
        if pinned and key.get_fingerprint("sha256") != pinned:
            raise ConfigError(
                f"host_key and host_key_fingerprint disagree: the key's fingerprint is "
                f"{key.get_fingerprint('sha256')}, not {pinned}; give one of them"
            )
    return settings.to_dict()
