"""Warm starts, Bayesian sweeps, estimators, and reading a large sweep's results fast."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sweep_helpers import sweep_config

from ferry import Experiment, ScriptRunConfig, Workspace
from ferry.errors import ConfigError
from ferry.hyperdrive import (
    BayesianParameterSampling,
    GridParameterSampling,
    HyperDriveConfig,
    HyperDriveRun,
    PrimaryMetricGoal,
    RandomParameterSampling,
    choice,
    quniform,
    uniform,
)
from ferry.hyperdrive.sweep import SweepSpec
from ferry.hyperdrive.termination import PolicySpec
from ferry.status import RunStatus
from ferry.tracking import MetricSeries, RunRecord

GRID = GridParameterSampling({"--a": choice(1, 2), "--b": choice("x", "y")})


def _acc(value: float) -> list[dict[str, object]]:
    return [{"k": "metric", "name": "acc", "value": value}]


def test_resume_from_warm_starts_a_new_sweep(
    experiment: Experiment, source: Path, fake: Callable[..., str]
) -> None:
    fake("earlier", spool=_acc(0.95))
    fake("later", spool=_acc(0.9))
    first = experiment.submit(
        sweep_config(source, "earlier", hyperparameter_sampling=GRID, max_total_runs=2)
    )
    first.wait_for_completion()
    second = experiment.submit(
        sweep_config(
            source, "later", hyperparameter_sampling=GRID, max_total_runs=10, resume_from=[first]
        )
    )
    second.wait_for_completion()
    mine = set(second.get_hyperparameters().values())
    theirs = set(first.get_hyperparameters().values())
    assert len(mine) == 2 and not mine & theirs  # the grid's points already run are not rerun
    best = second.get_best_run_by_primary_metric()
    assert best is not None and best.parent is not None and best.parent.id == first.id
    own = second.get_best_run_by_primary_metric(include_resume_from_runs=False)
    assert own is not None and own.parent is not None and own.parent.id == second.id
    assert "warm start" in (second.run_dir / "user_logs" / "std_log.txt").read_text()


def test_resume_from_refuses_what_the_reference_refuses(
    experiment: Experiment, source: Path, fake: Callable[..., str]
) -> None:
    fake(run_seconds=60)
    running = experiment.submit(sweep_config(source, max_total_runs=1))
    with pytest.raises(ConfigError, match="should be completed or canceled"):
        sweep_config(source, resume_from=running)
    with pytest.raises(ConfigError, match="primary metric name"):
        sweep_config(source, primary_metric_name="loss", resume_from=[running])
    running.cancel()
    running.wait_for_completion(raise_on_error=False, timeout_seconds=60)
    with pytest.raises(ConfigError, match="duplicate"):
        sweep_config(source, resume_from=[running, running])
    with pytest.raises(ConfigError, match="at most 5"):
        sweep_config(source, resume_from=[running] * 6)
    with pytest.raises(ConfigError, match="should not be greater than 1000"):
        sweep_config(source, max_total_runs=1000, resume_from=[running])


def test_a_bayesian_sweep_proposes_within_the_space(
    experiment: Experiment, source: Path, fake: Callable[..., str]
) -> None:
    fake()
    space = {"--x": uniform(0, 1), "--n": quniform(10, 50, 5), "--k": choice("a", "b")}
    with pytest.warns(UserWarning, match="Bayesian"):
        config = sweep_config(
            source,
            hyperparameter_sampling=BayesianParameterSampling(space),
            max_total_runs=3,
            max_concurrent_runs=1,
        )
    run = experiment.submit(config)
    assert run.wait_for_completion()["status"] == "Completed"
    for text in run.get_hyperparameters().values():
        values = json.loads(text)
        assert 0 <= values["--x"] <= 1 and values["--n"] % 5 == 0 and values["--k"] in "ab"


class Estimator:
    """A stand-in for ferry.estimator.Estimator: script_params become the arguments."""

    def __init__(self, source: Path, script_params: dict[str, object]) -> None:
        self.source_directory = str(source)
        self.script_params = script_params

    def _to_script_run_config(self) -> ScriptRunConfig:
        arguments: list[object] = []
        for key, value in self.script_params.items():
            arguments += [key] if value is None else [key, value]
        return ScriptRunConfig(self.source_directory, "train.py", arguments, compute_target="fake")


def test_an_estimator_sweep_replaces_its_script_params_with_a_warning(
    experiment: Experiment, source: Path, fake: Callable[..., str]
) -> None:
    fake()
    estimator = Estimator(source, {"--data": "d.csv", "--C": 1.0, "--verbose": None})
    config = HyperDriveConfig(
        estimator=estimator,
        hyperparameter_sampling=RandomParameterSampling({"C": choice(0.1, 10)}),
        primary_metric_name="acc",
        primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_total_runs=2,
    )
    with pytest.warns(UserWarning, match=r"\['--C'\] is the list of overridden"):
        run = experiment.submit(config)
    run.wait_for_completion()
    for child in run.get_children():
        args = child.get_details()["runDefinition"]["arguments"]
        assert args[:3] == ["--data", "d.csv", "--verbose"] and args[3] == "--C"
        assert args[4] in (0.1, 10)


def _fabricate(workspace: Workspace, children: int) -> str:
    """A finished sweep of ``children`` children, written straight to the run history."""
    store = workspace.store
    space = RandomParameterSampling({"--a": uniform(0, 1)}).spec
    spec = SweepSpec(
        space,
        PolicySpec(),
        "acc",
        True,
        children,
        children,
        child_definition={"script": "t.py", "arguments": []},
    )
    sweep_id = f"HD_00000000-0000-0000-0000-{children:012x}"
    store.ensure_experiment("big")
    store.create_run(
        RunRecord(
            sweep_id, "big", RunStatus.COMPLETED, run_type="hyperdrive", definition=spec.to_stored()
        )
    )
    store.set_tags(
        sweep_id, {f"{sweep_id}_{n}": json.dumps({"--a": n / 7}) for n in range(children)}
    )
    for n in range(children):
        store.create_run(RunRecord(f"{sweep_id}_{n}", "big", RunStatus.COMPLETED, sweep_id))
    store.log_series(
        [
            MetricSeries(f"{sweep_id}_{n}", "acc", "scalar", [n % 13 / 13, n % 7 / 7], None, [0, 1])
            for n in range(children)
        ]
    )
    return sweep_id


def test_reading_a_300_child_sweep_costs_the_same_queries_as_a_3_child_one(
    workspace: Workspace,
) -> None:
    """Reading a sweep's children, metrics and best run is a few queries whatever the number
    of children (never one per child); the time it takes is for bench/sweep_bench.py."""
    import sqlalchemy as sa

    def queries(children: int) -> int:
        sweep_id = _fabricate(workspace, children)
        run = HyperDriveRun.get(workspace, sweep_id)
        count = [0]

        def counted(*_: object) -> None:
            count[0] += 1

        engine = workspace.store.engine  # type: ignore[attr-defined]
        sa.event.listen(engine, "before_cursor_execute", counted)
        try:
            ordered = run.get_children_sorted_by_primary_metric()
            metrics = run.get_metrics()
            params = run.get_hyperparameters()
            best = run.get_best_run_by_primary_metric()
        finally:
            sa.event.remove(engine, "before_cursor_execute", counted)
        assert len(ordered) == len(metrics) == len(params) == children
        assert (
            ordered[0]["best_primary_metric"] == max(c["best_primary_metric"] for c in ordered)
            and best is not None
        )
        assert [c["best_primary_metric"] for c in ordered] == sorted(
            (c["best_primary_metric"] for c in ordered), reverse=True
        )
        return count[0]

    few, many = queries(3), queries(300)
    assert few > 0 and many <= few + 2, f"300 children took {many} queries, 3 took {few}"


def test_the_same_seed_gives_the_same_values_in_two_sweeps(
    experiment: Experiment, source: Path, fake: Callable[..., str]
) -> None:
    fake()
    sweeps = [experiment.submit(sweep_config(source, seed=42, max_total_runs=3)) for _ in range(2)]
    for run in sweeps:
        run.wait_for_completion()
    first, second = (
        [json.loads(v) for _, v in sorted(run.get_hyperparameters().items())] for run in sweeps
    )
    assert first == second and len({json.dumps(v) for v in first}) == 3
    assert sweeps[0].summary()["seed"] == 42
