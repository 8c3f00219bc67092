"""``ferry login URL [--token T]``: use a ferry server's workspace from this folder.

The token comes from ``--token``, else standard input (typed without echo on a terminal). It is
checked against the server, stored in ``$FERRY_HOME/credentials.json`` (0600), and
``.ferry/config.json`` in the current folder then names the server, so every ferry command and
``Workspace.from_config()`` here use it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("login")
@click.argument("url")
@click.option("--token", help="The token (else read from standard input).")
@click.option(
    "--dir",
    "directory",
    default=".",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder whose .ferry/config.json names the server.",
)
def login(url: str, token: str | None, directory: Path) -> None:
    """Log in to a ferry server and use its workspace from this folder."""
    from ferry.errors import ConfigError
    from ferry.server.client import check_server_url, save_token, server_info
    from ferry.workspace import Workspace

    url = check_server_url(url)
    if token is None:
        if sys.stdin.isatty():
            token = click.prompt("token", hide_input=True)
        else:
            token = sys.stdin.readline()
    token = (token or "").strip()
    if not token:
        raise ConfigError("no token given: pass --token or send it on standard input")
    info = server_info(url, token)  # the server is up and takes the token, or a clear error
    save_token(url, token)
    ws = Workspace.connect(url, token)
    config = ws.write_config(directory)
    click.echo(f"logged in to {url} as {info.get('user')}; {config} names the server")
