"""``ferry data list|show|datastores``: datasets, their versions and lineage; datastores."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from ferry.cli import render
from ferry.cli.app import Context, emit_json, pass_ctx
from ferry.errors import ConfigError


@click.group()
def data() -> None:
    """Look at datasets and datastores."""


def split_ref(ref: str, version: int | None) -> tuple[str, int | None]:
    """``NAME`` or ``NAME:VERSION`` (and ``--version``) as (name, version or None)."""
    name, sep, number = ref.rpartition(":")
    if sep and number.isdigit():
        if version is not None and version != int(number):
            raise ConfigError(f"{ref!r} and --version {version} name two versions; give one")
        return name, int(number)
    return ref, version


def when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else ""


def dataset_summary(record: Any) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "version": record.version,
        "kind": record.kind,
        "files": record.files,
        "bytes": record.bytes,
        "manifest": record.manifest_id,
        "description": record.description,
        "tags": dict(record.tags),
        "createdAt": record.created_at,
        "runId": record.run_id,
        "sources": list(record.definition.get("sources") or []),
    }


@data.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def list_datasets(ctx: Context, as_json: bool) -> None:
    """Registered datasets: the latest version of each, and how many there are."""
    from ferry.data.catalog import assets

    store = assets(ctx.ws)
    rows = []
    for name, versions in store.list_datasets().items():
        latest = store.get_dataset(name)
        rows.append({**dataset_summary(latest), "versions": versions})
    if as_json:
        emit_json(rows)
        return
    table = render.table("name", "version", "kind", "files", "bytes", "created")
    for r in rows:
        table.add_row(
            r["name"], f"{r['version']} of {len(r['versions'])}", r["kind"], str(r["files"]),
            str(r["bytes"]), when(r["createdAt"]),
        )  # fmt: skip
    render.show(table)


@data.command("show")
@click.argument("ref")
@click.option("--version", type=click.IntRange(min=1), help="A version (default: the latest).")
@click.option("--files", "show_files", type=click.IntRange(min=0), default=20, show_default=True,
              help="How many file paths to show.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def show(ctx: Context, ref: str, version: int | None, show_files: int, as_json: bool) -> None:
    """A dataset version (NAME, NAME:VERSION or its id): what it holds, where from, the runs
    that read or wrote it and the models trained on it."""
    from ferry.data.catalog import assets
    from ferry.data.errors import DatasetNotFound
    from ferry.data.versions import load_listing
    from ferry.tracking.assets import AssetNotFound

    store = assets(ctx.ws)
    name, number = split_ref(ref, version)
    try:
        record = store.get_dataset(name, number)
    except AssetNotFound as exc:
        try:
            record = store.get_dataset_by_id(ref)
        except AssetNotFound:
            raise DatasetNotFound(str(exc)) from None
    listing = load_listing(ctx.ws, record)
    files = [
        {"path": rel, "size": e.size, "digest": e.digest} for rel, e in listing.manifest.files()
    ]
    runs = [
        {"runId": r.run_id, "direction": r.direction, "name": r.name, "mechanism": r.mechanism}
        for r in store.list_run_datasets(dataset_id=record.id)
    ]
    models = [
        {"model": f"{m.name}:{m.version}", "scenario": s}
        for m in store.list_models()
        for s, d in m.datasets
        if d == record.id
    ]
    details = {**dataset_summary(record), "definition": dict(record.definition), "fileList": files,
               "runs": runs, "models": models}  # fmt: skip
    if as_json:
        emit_json(details)
        return
    table = render.table(show_header=False, box=None, padding=(0, 2))
    label = f"{record.name}:{record.version}" if record.name else "(not registered)"
    for key, value in (("dataset", label), ("id", record.id), ("kind", record.kind),
                       ("files", record.files), ("bytes", record.bytes),
                       ("manifest", record.manifest_id), ("created", when(record.created_at)),
                       ("description", record.description or "")):  # fmt: skip
        table.add_row(key, str(value))
    for source in details["sources"]:
        table.add_row("source", render.text(", ".join(f"{k}={v}" for k, v in source.items())))
    for f in files[:show_files]:
        table.add_row("file", f"{render.text(f['path'])} ({f['size']} bytes)")
    if len(files) > show_files:
        table.add_row("file", f"… and {len(files) - show_files} more")
    for r in runs:
        verb = "read by" if r["direction"] == "input" else "written by"
        table.add_row(verb, f"{r['runId']} as {r['name']!r} ({r['mechanism']})")
    for m in models:
        table.add_row("model", f"{m['model']} ({m['scenario']})")
    render.show(table)


@data.command("datastores")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def datastores(ctx: Context, as_json: bool) -> None:
    """The workspace's datastores (settings only: secrets are never shown)."""
    from ferry.data.catalog import all_specs, default_datastore_name

    default = default_datastore_name(ctx.ws)
    rows = [
        {"name": s.name, "kind": s.kind, "default": s.name == default, **dict(s.config)}
        for s in all_specs(ctx.ws)
    ]
    if as_json:
        emit_json(rows)
        return
    table = render.table("name", "kind", "where", "default")
    for r in rows:
        where = r.get("path") or r.get("bucket_name") or r.get("container_name")
        endpoint = r.get("endpoint")
        table.add_row(r["name"], r["kind"], f"{where}" + (f" @ {endpoint}" if endpoint else ""),
                      "yes" if r["default"] else "")  # fmt: skip
    render.show(table)


def run_lineage(run: Any) -> dict[str, Any]:
    """A run's datasets and models as plain data (``ferry runs show``)."""
    from ferry.errors import StoreError
    from ferry.tracking.assets import asset_store

    try:
        store = asset_store(run.workspace.store)
        links = store.list_run_datasets(run_id=run.id)
        models = store.list_models(run_id=run.id)
    except StoreError:
        return {"inputs": [], "outputs": [], "models": []}
    out: dict[str, Any] = {"inputs": [], "outputs": [], "models": []}
    for link in links:
        record = store.get_dataset_by_id(link.dataset_id)
        entry = {"name": link.name, "dataset": record.name, "version": record.version,
                 "id": record.id, "mechanism": link.mechanism, "files": record.files,
                 "bytes": record.bytes, "pathOnCompute": link.path_on_compute}  # fmt: skip
        out["inputs" if link.direction == "input" else "outputs"].append(entry)
    out["models"] = [{"model": f"{m.name}:{m.version}", "root": m.root} for m in models]
    return out
