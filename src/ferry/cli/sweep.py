"""``ferry sweep JOB.yml [-e EXP] [-t TARGET] [--no-wait] [--json]`` and the sweep's summary.

The job file is the one ``ferry submit`` takes, plus a ``sweep:`` section
(:mod:`ferry.hyperdrive.jobfile`). The command submits the sweep, follows its progress (a line per
child start, end and termination, and the best so far) and ends with the children sorted by the
primary metric; ``ferry runs show HD_…`` prints the same summary (:func:`print_sweep`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ferry.cli import render
from ferry.cli.app import Context, emit_json, parse_pairs, pass_ctx
from ferry.errors import ConfigError

#: children shown in the text summary (--json has them all)
SHOWN = 20


@click.command()
@click.argument("job_file", type=click.Path(path_type=Path))
@click.option("-e", "--experiment", help="Experiment name (default: the job file's).")
@click.option(
    "-t", "--target", "target", help="Compute target for every child (default: the job's)."
)
@click.option("--tag", "tags", multiple=True, help="KEY=VALUE tag of the sweep run (repeatable).")
@click.option("--no-wait", is_flag=True, help="Return once the sweep is queued (prints its id).")
@click.option("--json", "as_json", is_flag=True, help="Print the sweep's summary as JSON.")
@pass_ctx
def sweep(
    ctx: Context,
    job_file: Path,
    experiment: str | None,
    target: str | None,
    tags: tuple[str, ...],
    no_wait: bool,
    as_json: bool,
) -> None:
    """Run a hyperparameter sweep: a job file with a sweep: section.

    \b
    sweep:
      sampling: random              # random | grid | bayesian
      parameters: {--alpha: "uniform(0, 1)", --kernel: "choice('linear', 'rbf')"}
      policy: {bandit: {slack_factor: 0.1, evaluation_interval: 1}}
      metric: accuracy
      goal: maximize
      max_total_runs: 20
      max_concurrent_runs: 4
    """
    from ferry.cli.submit import _default_experiment, following
    from ferry.experiment import Experiment
    from ferry.hyperdrive.jobfile import load_sweep

    if not job_file.is_file():
        raise ConfigError(f"sweep file {str(job_file)!r} does not exist")
    job, config = load_sweep(job_file)
    src = config.script_run_config()
    if target:
        src.run_config.target = target
    if job.environment_name:
        from ferry.environment import Environment

        src.run_config.environment = Environment.from_cli_spec(ctx.ws, job.environment_name)
    name = experiment or job.experiment or _default_experiment(Path(src.source_directory))
    tag_map = {**job.tags, **parse_pairs(tags, "--tag")}
    run = Experiment(ctx.ws, name).submit(config, tags=tag_map)
    click.echo(
        f"sweep {run.id} queued on {src.run_config.target}: "
        f"{config._generator_config['name']} sampling, {config._max_total_runs} run(s), "
        f"{config._max_concurrent_runs} at a time",
        err=True,
    )
    if no_wait:
        click.echo(run.id)
        return
    with following(run.id):
        details = run.wait_for_completion(show_output=not as_json, raise_on_error=False)
    summary = sweep_summary(run)
    if as_json:
        emit_json(summary)
    else:
        print_sweep(summary)
    sys.exit(0 if details["status"] == "Completed" else 1)


def sweep_summary(run: Any) -> dict[str, Any]:
    """The sweep's settings, status and children sorted by the primary metric (JSON-ready)."""
    stored = run.summary()
    record = run.record
    children = run.get_children_sorted_by_primary_metric()
    best = next((c for c in children if c["best_primary_metric"] is not None), None)
    return {
        "runId": run.id,
        "experiment": run.experiment.name,
        "status": record.status.value,
        "target": record.target,
        "sampling": stored["generator_config"],
        "policy": stored["policy_config"],
        "primaryMetric": stored["primary_metric_config"],
        "maxTotalRuns": stored["max_total_jobs"],
        "maxConcurrentRuns": stored["max_concurrent_jobs"],
        "maxDurationMinutes": stored["max_duration_minutes"],
        "seed": stored.get("seed"),
        "bestRunId": best["run_id"] if best else None,
        "bestPrimaryMetric": best["best_primary_metric"] if best else None,
        "children": children,
        "error": dict(record.error) if record.error else None,
    }


def print_sweep(summary: dict[str, Any]) -> None:
    """The summary as text: settings, then the children, best first."""
    metric = summary["primaryMetric"]
    head = render.table(show_header=False, box=None, padding=(0, 2))
    head.add_row("sweep", summary["runId"])
    head.add_row("status", summary["status"])
    head.add_row("sampling", summary["sampling"]["name"])
    head.add_row("policy", json.dumps(summary["policy"]))
    head.add_row("metric", f"{metric['name']} ({metric['goal']})")
    head.add_row("runs", f"{len(summary['children'])} of {summary['maxTotalRuns']}")
    if summary["bestRunId"]:
        head.add_row("best", f"{summary['bestRunId']}  {summary['bestPrimaryMetric']:g}")
    if summary["error"]:
        head.add_row("error", str(summary["error"].get("error", {}).get("message", "")))
    head.add_row("children", f"{summary['runId']}_<n>")
    render.show(head)
    table = render.table("n", "status", metric["name"], "hyperparameters")
    for child in summary["children"][:SHOWN]:
        value = child["best_primary_metric"]
        table.add_row(
            child["run_id"].rpartition("_")[2],
            child["status"],
            "" if value is None else f"{value:g}",
            render.text(_arguments(child["hyperparameters"]), 120),
        )
    render.show(table)
    hidden = len(summary["children"]) - SHOWN
    if hidden > 0:
        click.echo(f"… and {hidden} more (--json lists them all)")


def _arguments(hyperparameters: str | None) -> str:
    """A child's values as they reached its script: ``--alpha 0.5 --kernel rbf``."""
    try:
        values = json.loads(hyperparameters or "{}")
    except ValueError:
        return hyperparameters or ""
    if not isinstance(values, dict):
        return str(values)
    from ferry.hyperdrive.sweep import argument_name

    return " ".join(f"{argument_name(str(k))} {v}" for k, v in values.items())
