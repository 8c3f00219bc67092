"""The click application shared by the command modules: the group, context and JSON output."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

import click

#: Commands that work on what a workspace already holds (its runs, experiments, data, models,
#: environments, targets). Given a folder with -w that holds no workspace, they refuse it rather
#: than make an empty workspace there and answer from it: a mistyped path must not pass for
#: "no runs". The others (submit, sweep, init, env build, target attach …) make the workspace
#: on first use, as they always have; so does every command in the default workspace.
READERS = frozenset(
    {
        "data datastores", "data list", "data show",
        "env list", "env prune", "env show",
        "experiments list",
        "models download", "models list", "models show",
        "runs cancel", "runs compare", "runs diff", "runs download", "runs list", "runs logs",
        "runs metrics", "runs rerun", "runs restore", "runs show", "runs tag",
        "target delete", "target detach", "target list", "target show", "target status",
        "ui",
    }
)  # fmt: skip


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
    def given_folder(self) -> Path | None:
        """The folder -w (or FERRY_WORKSPACE) names, absolute; None when neither was given.
        It is a folder (relative to here), never the reference's bare workspace name, which
        Workspace.create would open under $FERRY_HOME."""
        return Path(os.path.abspath(os.path.expanduser(self._path))) if self._path else None

    @property
    def ws(self) -> Any:
        if self._ws is None:
            from ferry.workspace import Workspace

            path = self.given_folder
            if path is not None:
                if _command() in READERS:
                    check_workspace_folder(path)
                self._ws = Workspace.create(path)
            else:
                self._ws = Workspace.from_config()
        return self._ws


def check_workspace_folder(path: Path) -> None:
    """Refuse a folder given with -w that holds no workspace (see :data:`READERS`): one that
    does not exist, or is not a workspace folder (:func:`ferry.workspace.holds_workspace`)."""
    from ferry.errors import ConfigError
    from ferry.workspace import holds_workspace

    if holds_workspace(path):
        return
    why = "the folder does not exist" if not path.exists() else "the folder holds none"
    inner = path / ".ferry"
    if path.is_dir() and ((inner / "ferry.db").is_file() or (inner / "runs").is_dir()):
        fix = f"its project's workspace is {inner}: give -w that folder, or run ferry there"
    else:
        fix = (
            "check the path given to -w/--workspace (or FERRY_WORKSPACE); to start a workspace "
            f"there, run `ferry init --workspace-dir {shlex.quote(str(path))}` or submit a run with -w"
        )
    raise ConfigError(f"there is no ferry workspace in {path} ({why}); {fix}")


def _command() -> str:
    """The words of the command being run (``runs list``), without the program's name."""
    current = click.get_current_context(silent=True)
    return " ".join(current.command_path.split()[1:]) if current is not None else ""


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
