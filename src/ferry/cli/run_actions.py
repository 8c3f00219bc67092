"""What an editor does with a run, as JSON: follow it as JSON lines, tag it, compare its
snapshot with a working folder.

Following (``ferry submit --json --stream``, ``ferry runs logs -f --json``) prints one JSON
object per line, flushed as it happens, so a reader shows the first log line as soon as the job
writes it — one process from submit to the end, no second start-up::

    {"event": "queued", "runId": "exp_1700000000_ab12cd34", "experiment": "exp", "target": "local"}
    {"event": "log", "runId": "…", "text": "epoch 1 loss 0.3\\n"}
    {"event": "end", "runId": "…", "status": "Completed", "details": {…}}

``ferry runs compare RUN --folder DIR --json`` lists what differs between the run's snapshot and
the files a snapshot of DIR would take now (the same ignore rules), so the editor can open each
changed file in a diff editor against the restored snapshot.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ferry.cli import render
from ferry.cli.app import Context, emit_json, pass_ctx


def line(data: dict[str, Any]) -> None:
    """One JSON object on one line of standard output, flushed (strict JSON, like --json)."""
    from ferry.cli.render import strict

    try:
        text = json.dumps(data, default=str, allow_nan=False)
    except ValueError:
        text = json.dumps(strict(data), default=str, allow_nan=False)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def stream(run: Any, *, queued: dict[str, Any] | None = None) -> str:
    """Follow ``run`` as JSON lines until it ends; returns its final status."""
    from ferry.cli.submit import following

    if queued is not None:
        line({"event": "queued", "runId": run.id, **queued})
    with following(run.id):
        for chunk in run.follow_log():
            line({"event": "log", "runId": run.id, "text": chunk})
        details = run.wait_for_completion(show_output=False, raise_on_error=False)
    details["metrics"] = run.get_metrics()
    details["portalUrl"] = portal_url(run)
    line({"event": "end", "runId": run.id, "status": details["status"], "details": details})
    return str(details["status"])


def portal_url(run: Any) -> str | None:
    """The run's page in ferry's UI when one serves the workspace (``ferry ui`` or the
    server), else None."""
    url = str(run.get_portal_url())
    return url if url.startswith(("http://", "https://")) else None


@click.command("tag")
@click.argument("run_id")
@click.argument("pairs", nargs=-1)
@click.option("--remove", "removed", multiple=True, help="Remove this tag (repeatable).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def tag(
    ctx: Context, run_id: str, pairs: tuple[str, ...], removed: tuple[str, ...], as_json: bool
) -> None:
    """Set tags (KEY=VALUE, or KEY alone for a tag without a value) and remove tags."""
    from ferry.errors import ConfigError
    from ferry.run import Run

    run = Run.get(ctx.ws, run_id)
    values: dict[str, str | None] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not key:
            raise ConfigError(f"tag {pair!r} needs a name: KEY=VALUE or KEY")
        values[key] = value if sep else None
    if values:
        run.set_tags(values)
    if removed:
        run.remove_tags(list(removed))
    tags = run.get_tags()
    if as_json:
        emit_json({"runId": run.id, "tags": tags})
        return
    for name, shown in tags.items():
        click.echo(render.text(name) + ("" if shown is None else f"={render.text(shown)}"))


@click.command("compare")
@click.argument("run_id")
@click.option(
    "--folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="The working folder to compare with.",
)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def compare(ctx: Context, run_id: str, folder: Path, as_json: bool) -> None:
    """What differs between a run's snapshot and a folder now (the snapshot's ignore rules):
    files added in the folder, removed from it, and changed."""
    from ferry.run import Run

    run = Run.get(ctx.ws, run_id)
    changes = compare_with_folder(run, folder, ctx.ws.path)
    if as_json:
        emit_json({"runId": run.id, "folder": str(folder.resolve()), **changes})
        return
    for mark, key in (("A", "added"), ("D", "removed"), ("M", "changed")):
        for name in changes[key]:
            click.echo(f"{mark} {render.text(name)}")
    if not any(changes.values()):
        click.echo("the folder holds the run's snapshot exactly")


def compare_with_folder(run: Any, folder: Path, workspace_path: Path) -> dict[str, list[str]]:
    """Paths added, removed and changed from ``run``'s snapshot to ``folder`` (by content)."""
    from ferry.errors import ConfigError
    from ferry.snapshot import FileEntry
    from ferry.snapshot.digest import hash_fd
    from ferry.snapshot.walk import walk

    if not folder.is_dir():
        raise ConfigError(f"{str(folder)!r} is not a folder; pass --folder with the working folder")
    manifest = run._manifest()
    tree = walk(folder, exclude=[workspace_path])
    now: dict[str, str] = {}
    for rel, *_ in tree.files:
        path = Path(tree.root) / rel
        try:
            with path.open("rb") as handle:
                now[rel], _size = hash_fd(handle.fileno(), manifest.algo)
        except OSError:
            continue  # removed or unreadable while we looked: not part of the folder now
    before = {p: e for p, e in manifest.entries.items() if isinstance(e, FileEntry)}
    return {
        "added": sorted(p for p in now if p not in before),
        "removed": sorted(p for p in before if p not in now),
        "changed": sorted(p for p in now if p in before and before[p].digest != now[p]),
    }
