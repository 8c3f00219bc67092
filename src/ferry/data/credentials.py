"""Datastore secrets: never in the database, never in details, never in a message.

A datastore's secrets (an account key, a SAS token, an S3 secret key …) come from, in order:

1. the environment: ``FERRY_DATASTORE_<NAME>_<FIELD>`` — ``<NAME>`` is the datastore's name in
   capitals with other characters as ``_`` (``FERRY_DATASTORE_MYS3_SECRET_ACCESS_KEY``);
2. the workspace's credentials file, ``<workspace>/datastore-credentials.json``, which
   ``register_*`` writes when given a secret (mode 0600; a file others can read is refused);
3. what the storage library finds by itself (``AWS_ACCESS_KEY_ID``, ``~/.aws``,
   ``AZURE_STORAGE_CONNECTION_STRING`` …).

:func:`scrub` removes every known secret from text before it is shown.

Example::

    save_secrets(ws.path, "mys3", {"secret_access_key": "…"})
    secrets_for(ws.path, "mys3")["secret_access_key"]
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from ferry.agent.files import write_atomic
from ferry.errors import ConfigError

FILE_NAME = "datastore-credentials.json"
#: the secret fields a datastore may have
FIELDS = (
    "account_key",
    "sas_token",
    "connection_string",
    "access_key_id",
    "secret_access_key",
    "session_token",
)


def credentials_path(workspace: Path) -> Path:
    return Path(workspace) / FILE_NAME


def env_name(datastore: str, field: str) -> str:
    """``FERRY_DATASTORE_<NAME>_<FIELD>`` for a datastore and a secret field."""
    return f"FERRY_DATASTORE_{re.sub(r'[^A-Za-z0-9]', '_', datastore).upper()}_{field.upper()}"


def _read_file(workspace: Path) -> dict[str, dict[str, str]]:
    path = credentials_path(workspace)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read the datastore credentials {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fh.fileno()).st_mode
        if mode & 0o077:
            raise ConfigError(
                f"the datastore credentials {path} can be read by other users (mode "
                f"{stat.S_IMODE(mode):o}); make it private with `chmod 600 {path}`"
            )
        raw = fh.read(1 << 20)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"the datastore credentials {path} are not valid JSON ({type(exc).__name__}); fix "
            "the file or remove it and register the datastores again"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"the datastore credentials {path} must hold a JSON object")
    return {
        str(k): {str(f): str(v) for f, v in (fields or {}).items() if v is not None}
        for k, fields in data.items()
        if isinstance(fields, dict)
    }


def secrets_for(workspace: Path, datastore: str) -> dict[str, str]:
    """The secrets of ``datastore``: the environment's over the credentials file's."""
    found = dict(_read_file(workspace).get(datastore, {}))
    for field in FIELDS:
        value = os.environ.get(env_name(datastore, field))
        if value:
            found[field] = value
    return found


def save_secrets(workspace: Path, datastore: str, secrets: Mapping[str, str | None]) -> None:
    """Keep ``datastore``'s secrets in the credentials file (0600), replacing its old ones."""
    data = _read_file(workspace)
    clean = {k: str(v) for k, v in secrets.items() if v}
    if clean:
        data[datastore] = clean
    elif datastore not in data:
        return
    else:
        del data[datastore]
    body = json.dumps(data, indent=1, sort_keys=True).encode("utf-8")
    path = credentials_path(workspace)
    write_atomic(str(path), body, 0o600)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)  # an older file keeps its mode through the rename otherwise


def forget_secrets(workspace: Path, datastore: str) -> None:
    save_secrets(workspace, datastore, {})


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (and its URL-encoded form) replaced by ``***``."""
    from urllib.parse import quote

    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        for form in (secret, quote(secret, safe=""), quote(secret)):
            text = text.replace(form, "***")
    return text
