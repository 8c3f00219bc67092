"""The client side of a server's workspace: its URL, its token, the local cache, the stores.

``ferry login URL`` stores the token in ``$FERRY_HOME/credentials.json`` (readable by the user
alone, 0600) under the server's URL and writes ``.ferry/config.json`` with ``{"server": URL}``
in the current folder; :meth:`ferry.workspace.Workspace.from_config` then opens the server's
workspace. A token given to :meth:`Workspace.connect`, else ``$FERRY_TOKEN``, else the stored
one is used. Nothing here prints or logs a token.

Example::

    save_token("https://ferry.example", token)
    ws = Workspace.connect("https://ferry.example")
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ferry.agent.files import write_atomic
from ferry.errors import ConfigError

if TYPE_CHECKING:
    from ferry.snapshot.blobstore.http import HttpBlobStore
    from ferry.tracking.base import RunStore
    from ferry.tracking.http import HttpRunStore

CREDENTIALS_FILE = "credentials.json"
TOKEN_VARIABLE = "FERRY_TOKEN"


def check_server_url(url: str) -> str:
    """``http(s)://host[:port][/prefix]`` without a trailing slash, or a ConfigError."""
    if not isinstance(url, str):
        raise ConfigError(f"a server URL is text like https://ferry.example, got {url!r}")
    text = url.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{url!r} is not a server URL; give one like https://ferry.example or "
            "http://127.0.0.1:8765"
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError(
            "a server URL carries no user, password, query or fragment; give the token with "
            "`ferry login URL --token …` (or on standard input)"
        )
    return text


def server_cache_dir(url: str) -> Path:
    """This machine's folder for a server's workspace: ``$FERRY_HOME/servers/<host>-<hash>``."""
    from ferry.workspace import default_home

    parts = urlsplit(url)
    host = re.sub(r"[^A-Za-z0-9.-]", "_", f"{parts.hostname}-{parts.port or parts.scheme}")
    digest = hashlib.sha256(url.encode()).hexdigest()[:8]
    return default_home() / "servers" / f"{host}-{digest}"


def _credentials_path() -> Path:
    from ferry.workspace import default_home

    return default_home() / CREDENTIALS_FILE


def _read_credentials() -> dict[str, Any]:
    path = _credentials_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read {path} ({exc}); remove it and log in again with `ferry login URL`"
        ) from exc
    return data if isinstance(data, dict) else {}


def save_token(url: str, token: str) -> Path:
    """Store ``token`` for ``url`` in the credentials file (0600, written atomically)."""
    url = check_server_url(url)
    if not token or any(c.isspace() for c in token.strip()) or not token.strip().isprintable():
        raise ConfigError("the token is empty or holds spaces; paste it as printed by the server")
    data = _read_credentials()
    servers = data.get("servers") if isinstance(data.get("servers"), dict) else {}
    assert isinstance(servers, dict)
    servers[url] = {"token": token.strip()}
    data["servers"] = servers
    path = _credentials_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomic(str(path), json.dumps(data, indent=2).encode())
    os.chmod(path, 0o600)
    return path


def token_for(url: str, given: str | None = None) -> str:
    """The token to send to ``url``: given, else ``$FERRY_TOKEN``, else the stored one."""
    if given:
        return given
    env = os.environ.get(TOKEN_VARIABLE)
    if env:
        return env.strip()
    entry = (_read_credentials().get("servers") or {}).get(url)
    if isinstance(entry, dict) and isinstance(entry.get("token"), str):
        return str(entry["token"])
    raise ConfigError(
        f"no token for the ferry server at {url}: log in with `ferry login {url}` "
        f"(or set {TOKEN_VARIABLE})"
    )


def connection(url: str, token: str | None = None) -> Any:
    from ferry.tracking.http import ServerConnection

    return ServerConnection(url, token_for(url, token))


def http_store(url: str, token: str | None, mirror: Path) -> HttpRunStore:
    from ferry.tracking.http import HttpRunStore

    return HttpRunStore(connection(url, token), mirror)


def http_blobs(url: str, token: str | None, root: Path) -> HttpBlobStore:
    from ferry.snapshot.blobstore.http import HttpBlobStore

    return HttpBlobStore(connection(url, token), root)


def start_remote_run(store: RunStore, run_id: str) -> bool:
    """Queue a recorded run on the server holding ``store``."""
    from ferry.tracking.http import HttpRunStore

    if not isinstance(store, HttpRunStore):
        raise ConfigError("only a server's workspace starts runs on the server")
    return store.start_run(run_id)


def server_info(url: str, token: str | None = None) -> dict[str, Any]:
    """What the server says of itself (and of the token: its user and scope)."""
    found: dict[str, Any] = connection(url, token).call("GET", "/info")
    return found
