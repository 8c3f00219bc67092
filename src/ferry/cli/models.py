"""``ferry models list|show|download``: registered models and what produced them."""

from __future__ import annotations

from pathlib import Path

import click

from ferry.cli import render
from ferry.cli.app import Context, emit_json, pass_ctx
from ferry.cli.data import split_ref, when


@click.group()
def models() -> None:
    """Look at and download registered models."""


@models.command("list")
@click.option("--name", help="Only this model's versions.")
@click.option("--tag", "tags", multiple=True, help="KEY or KEY=VALUE (repeatable).")
@click.option("--run", "run_id", help="Only models registered from this run.")
@click.option("--latest", is_flag=True, help="Only the newest version of each name.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def list_models(
    ctx: Context,
    name: str | None,
    tags: tuple[str, ...],
    run_id: str | None,
    latest: bool,
    as_json: bool,
) -> None:
    """Registered models, newest version first."""
    from ferry.model import Model

    tag_filter = [[k, v] if sep else k for k, sep, v in (t.partition("=") for t in tags)]
    found = Model.list(ctx.ws, name=name, tags=tag_filter or None, run_id=run_id, latest=latest)
    if as_json:
        emit_json([m.serialize() for m in found])
        return
    table = render.table("model", "version", "files", "bytes", "run", "created", "tags")
    for m in found:
        shown = ", ".join(f"{k}={v}" if v is not None else k for k, v in m.tags.items())
        table.add_row(
            m.name, str(m.version), str(m.record.files), str(m.record.bytes), m.run_id or "",
            when(m.record.created_at), shown,
        )  # fmt: skip
    render.show(table)


@models.command("show")
@click.argument("ref")
@click.option("--version", type=click.IntRange(min=1), help="A version (default: the latest).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def show(ctx: Context, ref: str, version: int | None, as_json: bool) -> None:
    """A model version (NAME or NAME:VERSION) and its lineage: the run, its snapshot (the exact
    code), the environment and its lock, the dataset versions it was trained on."""
    from ferry.model import Model

    name, number = split_ref(ref, version)
    model = Model(ctx.ws, name, version=number)
    details = {**model.serialize(), "lineage": model.lineage()}
    if as_json:
        emit_json(details)
        return
    table = render.table(show_header=False, box=None, padding=(0, 2))
    rows = [
        ("model", model.id),
        ("registered", when(model.record.created_at)),
        ("files", f"{model.record.files} ({model.record.bytes} bytes) as {model.record.root}"),
        ("description", model.description or ""),
    ]
    for key, value in rows:
        table.add_row(key, render.text(value))
    for tag, tag_value in model.tags.items():
        table.add_row(f"tag {render.text(tag, 200)}", render.text(tag_value, 200))
    for prop, prop_value in model.properties.items():
        table.add_row(f"property {render.text(prop, 200)}", render.text(prop_value, 200))
    lineage = details["lineage"]
    for key, label in (("run", "run"), ("experiment", "experiment"), ("snapshot", "snapshot"),
                       ("environment", "environment"), ("environmentLock", "environment lock")):  # fmt: skip
        if lineage.get(key):
            table.add_row(label, render.text(lineage[key]))
    for d in lineage["datasets"]:
        label = f"{d['name']}:{d['version']}" if d.get("name") else d["id"]
        table.add_row(f"dataset ({d['scenario']})", render.text(label))
    render.show(table)


@models.command("download")
@click.argument("ref")
@click.option("--version", type=click.IntRange(min=1), help="A version (default: the latest).")
@click.option("-o", "--output", "target", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="Folder to write the model into.")  # fmt: skip
@click.option("--exist-ok", is_flag=True, help="Replace files that are there already.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def download(
    ctx: Context, ref: str, version: int | None, target: Path, exist_ok: bool, as_json: bool
) -> None:
    """Write a model's files into a folder (a single-file model as FOLDER/<file name>)."""
    from ferry.model import Model

    name, number = split_ref(ref, version)
    path = Model(ctx.ws, name, version=number).download(target, exist_ok=exist_ok)
    if as_json:
        emit_json({"path": path})
    else:
        click.echo(path)
