"""``ferry ui``: the studio (web UI) of this workspace, in a browser.

Serves the current workspace on loopback and prints its URL with a one-time token (opened in a
browser where there is one). For a workspace kept by a server it says where the server's UI is.
"""

from __future__ import annotations

import click

from ferry.cli.app import Context, pass_ctx


@click.command("ui")
@click.option("--port", type=click.IntRange(0, 65535), default=8780, show_default=True,
              help="Port to listen on (0: any free port).")  # fmt: skip
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback keeps it to this machine).")  # fmt: skip
@click.option("--no-browser", is_flag=True, help="Do not open a browser.")
@pass_ctx
def ui(ctx: Context, port: int, host: str, no_browser: bool) -> None:
    """Serve the web UI of this workspace: runs, live logs, charts, compare, sweeps."""
    from ferry.ui.local import check_host, serve

    check_host(host)
    serve(ctx.ws, host, port, open_browser=not no_browser)  # ctx.ws refuses a -w with none
