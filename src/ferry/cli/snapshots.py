"""``ferry snapshot preview [DIR]``: what a submit would take, before anything is stored."""

from __future__ import annotations

from pathlib import Path

import click

from ferry.cli.app import emit_json


@click.group()
def snapshot() -> None:
    """Source snapshots."""


@snapshot.command("preview")
@click.argument("directory", default=".", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def preview(directory: Path, as_json: bool) -> None:
    """Files, size, largest files and what each ignore rule removed (nothing is stored)."""
    from ferry.errors import ConfigError
    from ferry.snapshot import SnapshotLimits
    from ferry.snapshot import preview as take_preview

    if not directory.is_dir():
        raise ConfigError(f"{str(directory)!r} is not a folder")
    result = take_preview(directory, SnapshotLimits.from_env())
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(result.format())
    if not result.ok:
        raise SystemExit(2)
