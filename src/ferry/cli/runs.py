"""``ferry runs list|show|logs|metrics|cancel|download``."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from ferry.cli import render
from ferry.cli.app import Context, emit_json, pass_ctx


@click.group()
def runs() -> None:
    """Look at and control runs."""


def _run(ctx: Context, run_id: str) -> Any:
    from ferry.run import Run

    return Run.get(ctx.ws, run_id)


@runs.command("list")
@click.option("-e", "--experiment", help="Only this experiment.")
@click.option("--status", help="Only runs with this status.")
@click.option("--tag", "tags", multiple=True, help="KEY or KEY=VALUE (repeatable).")
@click.option("--include-children", is_flag=True)
@click.option("--parent", help="Only the children of this run (a sweep's: best first).")
@click.option(
    "-n", "--limit", type=click.IntRange(min=1, max=50_000), default=50, show_default=True
)
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many runs.")
@click.option(
    "--page", "as_page", is_flag=True, help='With --json: {"runs": [...], "nextOffset": N|null}.'
)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def list_runs(
    ctx: Context,
    experiment: str | None,
    status: str | None,
    tags: tuple[str, ...],
    include_children: bool,
    parent: str | None,
    limit: int,
    offset: int,
    as_page: bool,
    as_json: bool,
) -> None:
    """List runs, newest first (a sweep's children by its primary metric)."""
    from ferry.cli.run_pages import page_of_runs, summary

    tag_filter = {k: (v if sep else None) for k, sep, v in (t.partition("=") for t in tags)} or None
    page = page_of_runs(
        ctx,
        experiment=experiment,
        status=status,
        tags=tag_filter,
        include_children=include_children,
        parent=parent,
        limit=limit,
        offset=offset,
    )
    if as_json:
        rows = [summary(r, page.latest.get(r.id, {}), page.primary) for r in page.runs]
        emit_json({"runs": rows, "nextOffset": page.next_offset} if as_page else rows)
        return
    table = render.table("run", "experiment", "status", "target", "created", "duration")
    for r in page.runs:
        table.add_row(
            r.id, r.experiment, r.status.value, r.target, _when(r.created_at), _duration(r)
        )
    render.show(table)


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else ""


def _duration(r: Any) -> str:
    if r.start_time is None:
        return ""
    end = r.end_time or time.time()
    return f"{end - r.start_time:.1f} s"


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def show(ctx: Context, run_id: str, as_json: bool) -> None:
    """Details of one run: status, definition, timings, snapshot, metrics, files (a sweep's
    HD_… run: its settings and its children sorted by the primary metric)."""
    run = _run(ctx, run_id)
    if run.record.run_type == "hyperdrive":
        _show_sweep(ctx, run_id, as_json)
        return
    from ferry.cli.data import run_lineage

    details = run.get_details()
    details["metrics"] = run.get_metrics()
    details["files"] = run.get_file_names()
    details.pop("inputDatasets", None)  # Dataset objects: shown as plain data below
    details.pop("outputDatasets", None)
    details["datasets"] = lineage = run_lineage(run)
    if as_json:
        from ferry.cli.run_actions import portal_url

        details["portalUrl"] = portal_url(run)
        emit_json(details)
        return
    table = render.table(show_header=False, box=None, padding=(0, 2))
    for key in ("runId", "status", "target", "startTimeUtc", "endTimeUtc"):
        table.add_row(key, str(details.get(key) or ""))
    definition = details["runDefinition"]
    table.add_row("script", str(definition.get("script") or definition.get("command")))
    table.add_row("arguments", " ".join(map(render.text, definition.get("arguments") or [])))
    for key, value in (details.get("timings") or {}).items():
        table.add_row(f"time {key}", _seconds(value))
    snap = details.get("snapshot")
    if snap:
        table.add_row(
            "snapshot",
            f"{snap['id'][:16]}… {snap['files']} files, {snap['bytes']} bytes "
            f"({snap['newFiles']} files / {snap['newBytes']} bytes new, {snap['seconds']:.3f} s)",
        )
    for key, value in details["tags"].items():
        table.add_row(f"tag {render.text(key, 200)}", render.text(value, 200))
    for key, value in details["properties"].items():
        table.add_row(f"property {render.text(key, 200)}", render.text(value, 200))
    for key, value in details["metrics"].items():
        table.add_row(f"metric {render.text(key, 200)}", render.text(value, 100))
    for name in details["files"]:
        table.add_row("file", name)
    for d in lineage["inputs"]:
        version = f"{d['dataset']}:{d['version']}" if d["dataset"] else d["id"]
        shown = f"{d['name']} ← {version} ({d['mechanism']}, {d['files']} files)"
        table.add_row("input dataset", render.text(shown))
    for d in lineage["outputs"]:
        version = f"{d['dataset']}:{d['version']}" if d["dataset"] else d["id"]
        table.add_row(
            "output dataset", render.text(f"{d['name']} → {version} ({d['files']} files)")
        )
    for m in lineage["models"]:
        table.add_row("model", render.text(m["model"]))
    if details.get("error"):
        table.add_row("error", str(details["error"].get("error", {}).get("message")))
    render.show(table)


def _show_sweep(ctx: Context, run_id: str, as_json: bool) -> None:
    from ferry.cli.sweep import print_sweep, sweep_summary
    from ferry.hyperdrive.run import HyperDriveRun

    run = HyperDriveRun.get(ctx.ws, run_id)
    summary = sweep_summary(run)
    if as_json:
        emit_json({**run.get_details(), "hyperdrive": summary})
        return
    print_sweep(summary)


def _seconds(value: Any) -> str:
    return f"{value:.3f} s" if isinstance(value, int | float) else render.text(value)


@runs.command("logs")
@click.argument("run_id")
@click.option("-f", "--follow", is_flag=True, help="Keep following until the run ends.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Every log file of the run, by name (with -f: JSON lines as the log grows).",
)
@pass_ctx
def logs(ctx: Context, run_id: str, follow: bool, as_json: bool) -> None:
    """Print a run's log (and follow it live with -f)."""
    from ferry.targets.base import LOG_NAME

    run = _run(ctx, run_id)
    if as_json and follow:  # JSON lines: log text as it comes, then the end (run_actions)
        from ferry.cli.run_actions import stream

        stream(run)
        return
    if as_json:
        files = run.get_details()["logFiles"]
        emit_json(
            {
                name: Path(path).read_text(encoding="utf-8", errors="replace")
                for name, path in files.items()
            }
        )
        return
    if follow:
        from ferry.cli.submit import following

        with following(run.id):
            for chunk in run.follow_log():
                sys.stdout.write(chunk)
                sys.stdout.flush()
        return
    path = run.run_dir / LOG_NAME
    if path.exists():
        sys.stdout.write(path.read_text(encoding="utf-8", errors="replace"))


@runs.command("metrics")
@click.argument("run_id")
@click.option("--name", help="Only this metric.")
@click.option("--recursive", is_flag=True, help="Include child runs ({run_id: metrics}).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def metrics(ctx: Context, run_id: str, name: str | None, recursive: bool, as_json: bool) -> None:
    """A run's metrics, in the reference's shapes."""
    data = _run(ctx, run_id).get_metrics(name=name, recursive=recursive)
    if as_json:
        emit_json(data)
        return
    table = render.table("metric", "value")
    for key, value in data.items():
        table.add_row(render.text(key, 200), render.text(value, 200))
    render.show(table)


@runs.command("cancel")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def cancel(ctx: Context, run_id: str, as_json: bool) -> None:
    """Ask a run to stop (TERM, then KILL after the grace period)."""
    run = _run(ctx, run_id)
    requested = run.cancel()
    if as_json:
        emit_json({"runId": run_id, "cancelRequested": requested, "status": run.get_status()})
    elif requested:
        click.echo(f"cancel requested for {run_id}")
    else:
        click.echo(f"run {run_id} had already ended ({run.get_status()})")


@runs.command("download")
@click.argument("run_id")
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
)
@click.option("--prefix", help="Only files whose names start with this (e.g. outputs/).")
@pass_ctx
def download(ctx: Context, run_id: str, output: Path, prefix: str | None) -> None:
    """Download a run's files (outputs, logs, uploads) below OUTPUT.

    Links the job made are not followed and names or stored paths that would land outside
    OUTPUT are refused: such files are skipped with a warning (exit 1 when any was skipped)."""
    written = _run(ctx, run_id).download_files(
        prefix=prefix,
        output_directory=output,
        on_skip=lambda message: click.echo(f"ferry: warning: {render.text(message)}", err=True),
    )
    for path in written:
        click.echo(render.text(path))
    if getattr(written, "skipped", None):
        sys.exit(1)


@runs.command("restore")
@click.argument("run_id")
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(path_type=Path),
    required=True,
    help="A new or empty folder (or an archive path with --zip).",
)
@click.option("--zip", "as_zip", is_flag=True, help="Write a .zip archive instead of a folder.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def restore(ctx: Context, run_id: str, output: Path, as_zip: bool, as_json: bool) -> None:
    """Write a run's exact source snapshot to a folder (or a zip)."""
    if as_zip and output.suffix != ".zip":
        output = output.with_name(output.name + ".zip")
    written = _run(ctx, run_id).restore_snapshot(path=output)
    if as_json:
        emit_json({"runId": run_id, "path": written})
        return
    click.echo(written)


@runs.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--stat", "stat_only", is_flag=True, help="Only the lists of files.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def diff(ctx: Context, run_a: str, run_b: str, stat_only: bool, as_json: bool) -> None:
    """What changed in the source between two runs: files, then a unified diff of text files."""
    changes, text = _run(ctx, run_a).diff(_run(ctx, run_b))
    if as_json:
        emit_json(
            {
                "added": sorted(changes.added),
                "removed": sorted(changes.removed),
                "changed": sorted(changes.changed),
                "diff": text,
            }
        )
        return
    for mark, names in (("A", changes.added), ("D", changes.removed), ("M", changes.changed)):
        for name in sorted(names):
            click.echo(f"{mark} {name}")
    if not (changes.added or changes.removed or changes.changed):
        click.echo("the two snapshots are identical")
    if text and not stat_only:
        click.echo()
        click.echo(text, nl=False)


@runs.command("rerun")
@click.argument("run_id")
@click.option("-t", "--target", "target", help="Another compute target (default: the original's).")
@click.option("--no-wait", is_flag=True)
@click.option("--json", "as_json", is_flag=True, help="The new run's id (or with --stream …).")
@click.option("--stream", is_flag=True, help="With --json: JSON lines until it ends.")
@pass_ctx
def rerun(
    ctx: Context, run_id: str, target: str | None, no_wait: bool, as_json: bool, stream: bool
) -> None:
    """Run a past run again, exactly: its stored snapshot, script, arguments, environment."""
    from ferry.cli.submit import following, print_summary

    run = _run(ctx, run_id).rerun(compute_target=target)
    click.echo(f"run {run.id} queued (rerun of {run_id})", err=True)
    if as_json and stream:
        from ferry.cli import run_actions

        queued = {"experiment": run.experiment.name, "target": run.record.target}
        status = run_actions.stream(run, queued={**queued, "rerunOf": run_id})
        sys.exit(0 if status == "Completed" else 1)
    if as_json and no_wait:
        emit_json({"runId": run.id, "rerunOf": run_id, "status": run.get_status()})
        return
    if no_wait:
        click.echo(run.id)
        return
    started = time.monotonic()
    with following(run.id):
        details = run.wait_for_completion(show_output=True, raise_on_error=False)
    print_summary(run, details, time.monotonic() - started)
    sys.exit(0 if details["status"] == "Completed" else 1)
