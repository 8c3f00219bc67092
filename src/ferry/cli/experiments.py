"""``ferry experiments list`` and ``ferry workspace show``: what an editor's tree shows first.

The VS Code extension (editors/vscode) holds no ferry logic: its tree asks these commands, with
``--json``, which workspace the open folder uses (a folder or a server URL, and whether a
``.ferry/config.json`` chose it) and which experiments it holds.

Example::

    ferry workspace show --json     # {"kind": "local", "location": "/p/.ferry", ...}
    ferry experiments list --json   # [{"name": "diabetes", "id": "…", "createdAt": …}, …]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from ferry.cli import render
from ferry.cli.app import Context, emit_json, pass_ctx


@click.group()
def experiments() -> None:
    """Experiments of the workspace."""


@experiments.command("list")
@click.option("--archived", is_flag=True, help="Archived experiments instead of active ones.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def list_experiments(ctx: Context, archived: bool, as_json: bool) -> None:
    """List experiments by name."""
    records = ctx.ws.store.list_experiment_records(archived=archived)
    rows = [
        {
            "name": r.name,
            "id": r.id,
            "createdAt": r.created_at,
            "archived": r.archived,
            "tags": dict(r.tags),
        }
        for r in records
    ]
    if as_json:
        emit_json(rows)
        return
    table = render.table("experiment", "id")
    for row in rows:
        table.add_row(row["name"], row["id"])
    render.show(table)


@click.group("workspace")
def workspace() -> None:
    """The workspace this folder uses."""


@workspace.command("show")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def show(ctx: Context, as_json: bool) -> None:
    """Which workspace commands here use, and what chose it (-w, a config file or the default)."""
    data = describe(ctx)
    if as_json:
        emit_json(data)
        return
    for key in ("kind", "location", "name", "configFile", "chosenBy"):
        click.echo(f"{key:<11} {render.text(data[key] if data[key] is not None else '')}")


def describe(ctx: Context) -> dict[str, Any]:
    """The workspace's kind and location, and how it was found (``chosenBy``: ``option`` for
    -w/FERRY_WORKSPACE, ``config`` for a .ferry/config.json upward from here, ``default`` for
    $FERRY_HOME or ~/.ferry — a folder with no workspace of its own yet)."""
    config = _config_file(Path.cwd())
    from ferry.workspace import holds_workspace

    given = ctx.given_folder
    if given is not None and not holds_workspace(given):
        # where commands would go: described, not made (the first submit makes it)
        given = given.resolve()
        return {
            "kind": "local",
            "location": str(given),
            "name": given.name,
            "path": str(given),
            "server": None,
            "configFile": None,
            "chosenBy": "option",
        }
    ws = ctx.ws
    chosen = "option" if ctx.path_given else "config" if config else "default"
    return {
        "kind": "server" if ws.server else "local",
        "location": ws.server or str(ws.path),
        "name": ws.name,
        "path": str(ws.path),
        "server": ws.server,
        "configFile": str(config) if config and chosen == "config" else None,
        "chosenBy": chosen,
    }


def _config_file(start: Path) -> Path | None:
    """The first ``.ferry/config.json`` upward from ``start`` (what Workspace.from_config
    reads first)."""
    from ferry.workspace import CONFIG_DIR, CONFIG_FILE

    for folder in (start, *start.parents):
        candidate = folder / CONFIG_DIR / CONFIG_FILE
        if os.path.isfile(candidate):
            return candidate
    return None
