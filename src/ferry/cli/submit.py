"""``ferry submit SCRIPT|JOB.yml [-e EXP] [-t TARGET] [--no-wait] [-- ARGS…]``."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ferry.cli import render
from ferry.cli.app import Context, emit_json, parse_pairs, pass_ctx
from ferry.errors import ConfigError


@click.command(context_settings={"ignore_unknown_options": False})
@click.argument("script", type=click.Path(path_type=Path))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "-e",
    "--experiment",
    help="Experiment name (default: the job file's, else the script folder's name).",
)
@click.option("-t", "--target", "target", help="Compute target name (default: local).")
@click.option(
    "--source-dir",
    type=click.Path(path_type=Path),
    help="Folder to snapshot (default: the script's folder).",
)
@click.option(
    "--env",
    "env",
    help="Environment: NAME[:VERSION] (registered or curated), requirements.txt or conda.yml.",
)
@click.option("--framework", help="Python (default) or PySpark (for Spark targets).")
@click.option("--tag", "tags", multiple=True, help="KEY=VALUE tag (repeatable).")
@click.option("--no-wait", is_flag=True, help="Return once the run is queued.")
@click.option("--json", "as_json", is_flag=True, help="Print the final details as JSON.")
@click.option(
    "--stream",
    is_flag=True,
    help="With --json: JSON lines as the run goes (queued, log text, end with the details).",
)
@pass_ctx
def submit(
    ctx: Context,
    script: Path,
    args: tuple[str, ...],
    experiment: str | None,
    target: str | None,
    source_dir: Path | None,
    env: str | None,
    framework: str | None,
    tags: tuple[str, ...],
    no_wait: bool,
    as_json: bool,
    stream: bool,
) -> None:
    """Submit a training script (or a job YAML file) and follow it."""
    from ferry.experiment import Experiment
    from ferry.script_run_config import ScriptRunConfig

    tag_map: dict[str, Any] = dict(parse_pairs(tags, "--tag"))
    if script.suffix in (".yml", ".yaml"):
        from ferry.jobfile import load_job

        job = load_job(script)
        config = job.config
        if args:
            config.arguments = [*config.arguments, *args]
            config.run_config.arguments = list(config.arguments)
        if target:
            config.run_config.target = target
        experiment = experiment or job.experiment
        tag_map = {**job.tags, **tag_map}
        env = env or job.environment_name
    else:
        if not script.exists():
            raise ConfigError(f"script {str(script)!r} does not exist")
        source = source_dir or script.parent
        try:
            rel = script.resolve().relative_to(source.resolve())
        except ValueError:
            raise ConfigError(
                f"script {str(script)!r} is not inside the source folder {str(source)!r}; "
                "pass --source-dir with a folder that contains it"
            ) from None
        config = ScriptRunConfig(
            str(source),
            script=rel.as_posix(),
            arguments=list(args),
            compute_target=target or "local",
        )
    if framework:
        config.run_config.framework = framework
        config.run_config.validate()
    if env:
        from ferry.environment import Environment

        config.run_config.environment = Environment.from_cli_spec(ctx.ws, env)
    name = experiment or _default_experiment(Path(config.source_directory))
    run = Experiment(ctx.ws, name).submit(config, tags=tag_map)
    click.echo(f"run {run.id} queued on {config.run_config.target}", err=True)
    queued = {"experiment": name, "target": config.run_config.target}
    if as_json and stream:
        from ferry.cli import run_actions

        status = run_actions.stream(run, queued=queued)
        sys.exit(0 if status == "Completed" else 1)
    if no_wait:
        if as_json:
            emit_json({"runId": run.id, **queued})
        else:
            click.echo(run.id)
        return
    started = time.monotonic()
    if not as_json:  # load the summary's renderer while the job runs, not after it
        threading.Thread(target=_preload_rich, daemon=True).start()
    with following(run.id):
        details = run.wait_for_completion(show_output=not as_json, raise_on_error=False)
    if as_json:
        details["metrics"] = run.get_metrics()
        emit_json(details)
    else:
        print_summary(run, details, time.monotonic() - started)
    sys.exit(0 if details["status"] == "Completed" else 1)


@contextmanager
def following(run_id: str) -> Iterator[None]:
    """Ctrl-C while following a run stops the following, not the run: say so, exit 130."""
    try:
        yield
    except KeyboardInterrupt:
        click.echo(
            f"\nferry: stopped following {run_id}; the run continues "
            f"(ferry runs logs -f {run_id} / ferry runs cancel {run_id})",
            err=True,
        )
        sys.exit(130)


def _preload_rich() -> None:
    import rich.console
    import rich.table  # noqa: F401


def _default_experiment(source: Path) -> str:
    import re

    name = re.sub(r"[^\w\-]", "-", source.resolve().name, flags=re.ASCII).strip("-_")[:255]
    name = name or "default"
    return name if name[0].isalnum() else f"x{name}"


def print_summary(run: Any, details: dict[str, Any], waited: float) -> None:
    from rich.console import Console

    console = Console(stderr=False)
    status = details["status"]
    colour = {"Completed": "green", "Failed": "red", "Canceled": "yellow"}.get(status, "white")
    table = render.table(show_header=False, box=None, padding=(0, 2))
    table.add_row("run", run.id)
    table.add_row("status", render.styled(status, colour))
    timings = details.get("timings") or {}
    run_time = timings.get("run")
    table.add_row(
        "duration",
        f"{waited:.2f} s"
        + (f" (script {run_time:.2f} s)" if isinstance(run_time, int | float) else ""),
    )
    metrics = run.get_metrics()
    for key, value in list(metrics.items())[:20]:
        shown = (
            value[-1]
            if isinstance(value, list) and value and not isinstance(value[-1], list | dict)
            else value
        )
        suffix = f"  (last of {len(value)})" if isinstance(value, list) and len(value) > 1 else ""
        table.add_row(f"metric {render.text(key, 80)}", f"{render.text(shown, 80)}{suffix}")
    outputs = [n for n in run.get_file_names() if n.startswith("outputs/")]
    if outputs:
        table.add_row("outputs", ", ".join(outputs[:10]) + (" …" if len(outputs) > 10 else ""))
    if details.get("error"):
        table.add_row("error", str(details["error"].get("error", {}).get("message", "")))
    console.print()
    console.print(table)
