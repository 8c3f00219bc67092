"""``ferry ui``: the studio over a workspace on this machine.

The same app as ``ferry server`` (:func:`ferry.server.app.create_app`) over the workspace's own
database and blobs, with no supervisor pool (runs started from the UI get their supervisor
here, as a submit does). It listens on loopback by default and admits only a random token,
printed in the first URL as Jupyter does (the page keeps it, and sends it with every API call);
the address is left in the workspace (:mod:`ferry.ui.address`) so every process links runs to
their pages while it serves.

Example::

    ferry ui                 # ferry ui: http://127.0.0.1:8780/?token=…  (opens a browser)
    ferry ui --port 0 --no-browser
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import sys
from typing import TYPE_CHECKING, Any

from ferry.errors import ConfigError
from ferry.ui import address

if TYPE_CHECKING:
    from ferry.workspace import Workspace

DEFAULT_PORT = 8780


def listen(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free port), or a ConfigError saying why not."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        hint = (
            "another program uses it: choose another with --port (0 picks a free one)"
            if exc.errno == 98
            else "check --host"
        )
        raise ConfigError(
            f"ferry ui cannot listen on {host}:{port} ({exc.strerror}); {hint}"
        ) from None
    return sock


def check_host(host: str) -> bool:
    """Whether ``host`` is loopback; a name that is not an address is refused."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        if host == "localhost":
            return True
        raise ConfigError(
            f"--host {host!r} is not an IP address; give 127.0.0.1 (this machine only) or an "
            "address of this machine"
        ) from None


def build_app(ws: Workspace, token: str, host: str = "127.0.0.1", port: int = 0) -> Any:
    """The studio app over ``ws`` admitting ``token`` (for ``ferry ui`` and tests)."""
    from ferry.server.app import create_app
    from ferry.server.config import ServerConfig
    from ferry.server.services import ServerServices
    from ferry.tracking.accounts import ServerStore
    from ferry.workspace import Workspace as _Workspace

    if ws.server is not None:
        raise ConfigError(
            f"this workspace is kept by the server {ws.server}: its UI is served there — open "
            f"{ws.server}/ and sign in with your token"
        )
    url = os.environ.get("FERRY_DATABASE_URL") or f"sqlite:///{ws.path / 'ferry.db'}"
    store = ServerStore(url)
    blobs = ws.blobs
    serving = _Workspace.serving(ws.path, store, blobs)
    config = ServerConfig(
        database_url=url,
        blob_store=str(blobs.root),
        data_dir=ws.path,
        host=host,
        port=port,
        supervisors=0,
    )
    app = create_app(ServerServices(config, store, blobs, serving), supervise=False)
    app.state.local_token = token
    return app


def serve(ws: Workspace, host: str, port: int, open_browser: bool) -> None:
    """Serve the studio until interrupted; prints its first URL (with the token)."""
    import uvicorn

    loopback = check_host(host)
    token = secrets.token_urlsafe(24)
    sock = listen(host, port)
    port = sock.getsockname()[1]
    app = build_app(ws, token, host, port)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    base = f"http://{f'[{shown}]' if ':' in shown else shown}:{port}"
    first = f"{base}/?token={token}"
    if not loopback:
        print(
            f"ferry ui: listening on {host}, reachable from other machines: the token is the "
            "only guard, and traffic is not encrypted (put a TLS proxy in front: docs/server.md)",
            file=sys.stderr,
        )
    address.announce(ws.path, base, token)
    print(f"ferry ui: {first}", flush=True)
    print(f"ferry ui: serving workspace {ws.path} (Ctrl-C stops)", file=sys.stderr, flush=True)
    if open_browser:
        _open(first)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        address.withdraw(ws.path)
        sock.close()


def _open(url: str) -> None:
    """Open a browser where one is (a desktop session); quietly nothing on a server."""
    if not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or sys.platform == "darwin"
    ):
        return
    import webbrowser

    try:
        webbrowser.open(url, new=2)
    except webbrowser.Error:
        pass
