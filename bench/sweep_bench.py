"""HyperDrive sweeps (issue 12): per-trial overhead against a bare pool of processes, the time a
Bandit policy saves, and reading the results of a 1,000-child sweep.

- Overhead: a 100-trial random sweep of a trivial script that logs one metric, 4 at a time on
  the local target (every child a full ferry run: snapshot, log, metrics), against the same 100
  scripts run bare by a pool of 4 processes, and against optuna calling the script as a plain
  subprocess (4 threads; it keeps no run history). (sweep − bare) / trials.
- Bandit: the same kind of sweep on a script whose bad configurations are slow, with and without
  ``BanditPolicy(slack_factor=0.1, delay_evaluation=3)``.
- Results: a finished 1,000-child sweep written straight to the run history, then
  ``get_children_sorted_by_primary_metric()`` (and the other readers) timed.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import median, scratch, write_result

#: bare runs see what a ferry job sees: ferry's in-job runtime first on the path (set in main)
BARE_ENV: dict[str, str] = {}
TRIALS = 100
AT_ONCE = 4
REPEAT = 3

TRIVIAL = """\
import argparse
from ferry import Run
parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float)
args = parser.parse_args()
Run.get_context().log("score", 1 - (args.x - 0.3) ** 2)
print("score", 1 - (args.x - 0.3) ** 2)
"""

SLOW_WHEN_BAD = """\
import argparse, time
from ferry import Run
parser = argparse.ArgumentParser()
parser.add_argument("--quality", type=float)
args = parser.parse_args()
run = Run.get_context()
for step in range(1, 21):
    run.log("acc", args.quality * step / 20)
    time.sleep(0.05 if args.quality >= 0.5 else 0.25)   # bad configurations are slow
"""


def _bare_pool(python: str, script: Path, values: list[float]) -> float:
    def one(x: float) -> None:
        subprocess.run(
            [python, str(script), "--x", repr(x)], check=True, capture_output=True, env=BARE_ENV
        )

    t = time.perf_counter()
    with ThreadPoolExecutor(AT_ONCE) as pool:
        list(pool.map(one, values))
    return time.perf_counter() - t


def _optuna(python: str, script: Path) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: Any) -> float:
        x = trial.suggest_float("x", 0, 1)
        out = subprocess.run(
            [python, str(script), "--x", repr(x)],
            check=True,
            capture_output=True,
            text=True,
            env=BARE_ENV,
        )
        return float(out.stdout.split()[-1])

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    t = time.perf_counter()
    study.optimize(objective, n_trials=TRIALS, n_jobs=AT_ONCE)
    return time.perf_counter() - t


def _sweep(ws: Any, source: Path, script: str, sampling: Any, total: int, **kwargs: Any) -> Any:
    from ferry import Experiment, ScriptRunConfig
    from ferry.hyperdrive import HyperDriveConfig, PrimaryMetricGoal

    config = HyperDriveConfig(
        run_config=ScriptRunConfig(str(source), script),
        hyperparameter_sampling=sampling,
        primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_total_runs=total,
        max_concurrent_runs=AT_ONCE,
        **kwargs,
    )
    t = time.perf_counter()
    run = Experiment(ws, "bench").submit(config)
    details = run.wait_for_completion()
    assert details["status"] == "Completed", details
    return run, time.perf_counter() - t


def _phases(run: Any) -> str:
    children = [c.record for c in run.get_children()]
    keys = ("queue", "prepare", "first_log", "run", "finalize")
    parts = []
    for key in keys:
        values = [r.timings[key] for r in children if key in r.timings]
        if values:
            parts.append(f"{key} {statistics.median(values) * 1000:.0f} ms")
    return ", ".join(parts)


def _fabricate(ws: Any, children: int) -> str:
    """A finished sweep of ``children`` children (10 values of the metric each) in the store."""
    from ferry.hyperdrive import RandomParameterSampling, uniform
    from ferry.hyperdrive.sweep import SweepSpec
    from ferry.hyperdrive.termination import PolicySpec
    from ferry.status import RunStatus
    from ferry.tracking import MetricSeries, RunRecord

    store = ws.store
    sampling = RandomParameterSampling({"--lr": uniform(0, 1), "--depth": uniform(1, 9)}).spec
    spec = SweepSpec(sampling, PolicySpec(), "acc", True, children, 10, child_definition={})
    sweep_id = f"HD_{children:08d}-0000-0000-0000-000000000000"
    store.ensure_experiment("big")
    store.create_run(
        RunRecord(
            sweep_id, "big", RunStatus.COMPLETED, run_type="hyperdrive", definition=spec.to_stored()
        )
    )
    store.set_tags(
        sweep_id,
        {
            f"{sweep_id}_{n}": json.dumps({"--lr": n / children, "--depth": n % 9})
            for n in range(children)
        },
    )
    for n in range(children):
        store.create_run(
            RunRecord(f"{sweep_id}_{n}", "big", RunStatus.COMPLETED, sweep_id, created_at=n)
        )
    store.log_series(
        [
            MetricSeries(
                f"{sweep_id}_{n}",
                name,
                "scalar",
                [(n * 7 + i) % 101 / 100 for i in range(10)],
                None,
                [0.0] * 10,
            )
            for n in range(children)
            for name in ("acc", "loss")
        ]
    )
    return sweep_id


def main() -> None:
    work = scratch("sweep")
    os.environ["FERRY_HOME"] = str(work / "home")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from ferry import Workspace
    from ferry.hyperdrive import (
        BanditPolicy,
        GridParameterSampling,
        HyperDriveRun,
        RandomParameterSampling,
        choice,
        uniform,
    )
    from ferry.hyperdrive.draws import draw_point
    from ferry.runtime.layout import build_runtime_path

    ws = Workspace.create(work / "ws")
    runtime = build_runtime_path(work / "runtime")
    BARE_ENV.update(
        os.environ, PYTHONPATH=os.pathsep.join([str(runtime), os.environ.get("PYTHONPATH", "")])
    )
    source = work / "src"
    source.mkdir()
    (source / "trivial.py").write_text(TRIVIAL)
    (source / "slow_when_bad.py").write_text(SLOW_WHEN_BAD)
    python = sys.executable
    space = {"--x": uniform(0, 1)}
    values = [draw_point(tuple(space.items()), 1, i)["--x"] for i in range(TRIALS)]

    # warm up: the zygote, the page cache, optuna's import
    _sweep(ws, source, "trivial.py", RandomParameterSampling(space), 4, primary_metric_name="score")
    _bare_pool(python, source / "trivial.py", values[:4])

    bare, optuna_s, swept = [], [], []
    last = None
    for rep in range(REPEAT):
        bare.append(_bare_pool(python, source / "trivial.py", values))
        optuna_s.append(_optuna(python, source / "trivial.py"))
        sampling = RandomParameterSampling(space, properties={"seed": rep})
        last, seconds = _sweep(
            ws, source, "trivial.py", sampling, TRIALS, primary_metric_name="score"
        )
        swept.append(seconds)
    b, o, s = median(bare), median(optuna_s), median(swept)
    per_trial = (s - b) / TRIALS
    optuna_per_trial = (o - b) / TRIALS
    assert last is not None
    children = list(last.get_children())
    full = sum(1 for c in children if c.get_status() == "Completed" and "score" in c.get_metrics())

    qualities = choice(0.1, 0.9, 0.2, 0.95, 0.15, 1.0, 0.3, 0.85)
    grid = GridParameterSampling({"--quality": qualities})
    plain, plain_s = _sweep(ws, source, "slow_when_bad.py", grid, 8, primary_metric_name="acc")
    bandit, bandit_s = _sweep(
        ws, source, "slow_when_bad.py", grid, 8, primary_metric_name="acc",
        policy=BanditPolicy(slack_factor=0.1, evaluation_interval=1, delay_evaluation=3),
    )  # fmt: skip
    cut = sum(c.get_status() == "Canceled" for c in bandit.get_children())
    same_best = (
        plain.get_children_sorted_by_primary_metric()[0]["best_primary_metric"]
        == bandit.get_children_sorted_by_primary_metric()[0]["best_primary_metric"]
    )

    reads: dict[str, list[float]] = {}
    for size in (300, 1000):
        run = HyperDriveRun.get(ws, _fabricate(ws, size))
        for name, call in (
            ("get_children_sorted_by_primary_metric()", run.get_children_sorted_by_primary_metric),
            ("get_metrics()", run.get_metrics),
            ("get_hyperparameters()", run.get_hyperparameters),
            ("get_best_run_by_primary_metric()", run.get_best_run_by_primary_metric),
        ):
            times = []
            for _ in range(5):
                t = time.perf_counter()
                call()
                times.append(time.perf_counter() - t)
            reads.setdefault(name, []).append(median(times))
    rows = "\n".join(
        f"| `{name}` | {t300 * 1000:.0f} ms | {t1000 * 1000:.0f} ms |"
        for name, (t300, t1000) in reads.items()
    )
    write_result(
        "sweep",
        f"""
## HyperDrive sweeps (issue 12)

**Per-trial overhead.** A {TRIALS}-trial random sweep of a trivial script that logs one metric,
{AT_ONCE} at a time on the local target, against the same {TRIALS} scripts run bare by a pool of
{AT_ONCE} processes, and against optuna (random sampler, {AT_ONCE} threads) calling the script
as a plain subprocess. Median of {REPEAT} interleaved rounds, 2 cores shared with other work.

| how | wall time | per trial over the bare pool |
|---|---|---|
| bare pool of {AT_ONCE} processes (the anchor) | {b:.2f} s | — |
| optuna, script as a subprocess (keeps no run history) | {o:.2f} s | {optuna_per_trial * 1000:.0f} ms |
| `ferry` sweep: every child a full run (snapshot, log, metrics) | {s:.2f} s | **{per_trial * 1000:.0f} ms** |

Goal: ≤ 0.2 s per trial. All rounds: bare {", ".join(f"{v:.2f}" for v in bare)} s; optuna
{", ".join(f"{v:.2f}" for v in optuna_s)} s; sweep {", ".join(f"{v:.2f}" for v in swept)} s.
Children of the last sweep completed with their metric: {full} of {len(children)}; their phases
(median): {_phases(last)}. Anchors measured for the issue on this machine (20 trials, 2 at a
time): Ray Tune 1.6–2.7 s per trial; optuna with a subprocess about 14 ms per trial.

**Early termination saves time.** 8 configurations (grid), {AT_ONCE} at a time, of a script that
logs 20 values and whose bad configurations are 5× slower:

| policy | wall time | children cut | best metric |
|---|---|---|---|
| none | {plain_s:.2f} s | 0 | {plain.get_children_sorted_by_primary_metric()[0]["best_primary_metric"]:g} |
| `BanditPolicy(slack_factor=0.1, delay_evaluation=3)` | {bandit_s:.2f} s | {cut} | {bandit.get_children_sorted_by_primary_metric()[0]["best_primary_metric"]:g} |

Bandit saves **{(1 - bandit_s / plain_s) * 100:.0f}%** of the wall time; same best result: {"yes" if same_best else "no"}.

**Results.** A finished sweep written straight to the run history (10 values each of two metrics
per child), each reader timed (median of 5). The reference took about 5 minutes to read a
300-child sweep (Azure/MachineLearningNotebooks#1302).

| reader | 300 children | 1,000 children |
|---|---|---|
{rows}
""",
    )


if __name__ == "__main__":
    main()
