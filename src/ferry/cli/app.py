"""The click application shared by the command modules: the group, context and JSON output."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click


class Context:
    """Lazily opened workspace shared by the commands of one invocation."""

    def __init__(self, workspace: str | None) -> None:
        self._path = workspace
        self._ws: Any = None

    @property
    def path_given(self) -> bool:
        """Whether -w/--workspace (or FERRY_WORKSPACE) chose the workspace."""
        return self._path is not None

    @property
    def ws(self) -> Any:
        if self._ws is None:
            from ferry.workspace import Workspace

            # -w is a folder (relative to here), never the reference's bare workspace name,
            # which Workspace.create would open under $FERRY_HOME
            self._ws = (
                Workspace.create(os.path.abspath(os.path.expanduser(self._path)))
                if self._path
                else Workspace.from_config()
            )
        return self._ws


pass_ctx = click.make_pass_decorator(Context)


def parse_pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    """``KEY=VALUE`` options into a dict; a malformed one is a clear usage error."""
    from ferry.errors import ConfigError

    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{option} {item!r} must look like KEY=VALUE")
        out[key] = value
    return out


def emit_json(data: Any) -> None:
    """Strict JSON on standard output: NaN and ±Infinity are the strings "NaN", "Infinity" and
    "-Infinity" (see :mod:`ferry.cli.render`)."""
    from ferry.cli.render import to_json

    click.echo(to_json(data))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--workspace",
    "-w",
    envvar="FERRY_WORKSPACE",
    help="Workspace folder (default: found from .ferry/config.json, FERRY_HOME or ~/.ferry).",
)
@click.version_option(package_name="ferry")
@click.pass_context
def cli(ctx: click.Context, workspace: str | None) -> None:
    """ferry: run training scripts anywhere, unchanged, and keep everything about each run."""
    ctx.obj = Context(workspace)


@cli.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--workspace-dir",
    "workspace_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the workspace lives (default: DIRECTORY/.ferry).",
)
@click.option("--json", "as_json", is_flag=True)
def init(directory: Path, workspace_dir: Path | None, as_json: bool) -> None:
    """Create a workspace for this project and write .ferry/config.json."""
    from ferry.workspace import CONFIG_DIR, Workspace

    directory.mkdir(parents=True, exist_ok=True)
    ws = Workspace.create(workspace_dir or directory / CONFIG_DIR)
    config = ws.write_config(directory)
    if as_json:
        emit_json({"workspace": str(ws.path), "configFile": str(config)})
        return
    click.echo(f"workspace {ws.path}\nconfig    {config}")
