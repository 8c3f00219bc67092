"""Sweeps end to end on the scripted fake target: layout, limits, stops, results."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sweep_helpers import poll, sweep_config

from ferry import Experiment, Run, Workspace
from ferry.errors import ConfigError, RunFailed
from ferry.hyperdrive import GridParameterSampling, HyperDriveRun, choice
from ferry.status import RunStatus
from ferry.tracking import RunQuery

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def test_a_sweep_is_an_hd_run_whose_children_share_one_snapshot(
    workspace: Workspace, experiment: Experiment, source: Path, fake: Callable[..., str]
) -> None:
    fake(run_seconds=0.2)
    config = sweep_config(
        source, arguments=["--data", "d.csv", "--alpha", 3], max_total_runs=5, max_concurrent_runs=2
    )
    with pytest.warns(UserWarning, match=r"will override these duplicate entries.*--alpha"):
        run = experiment.submit(config, tags={"team": "a"})
    assert isinstance(run, HyperDriveRun) and re.fullmatch(f"HD_{UUID}", run.id)
    assert run.type == "hyperdrive" and run.tags["team"] == "a"
    details = run.wait_for_completion()
    assert details["status"] == "Completed"
    children = list(run.get_children())
    assert [c.id for c in children] == [f"{run.id}_{n}" for n in range(5)]
    params = run.get_hyperparameters()
    parent = run.record
    for child in children:
        record = child.record
        assert record.experiment == "sweeps" and record.status == RunStatus.COMPLETED
        assert record.snapshot is not None and parent.snapshot is not None
        assert record.snapshot["id"] == parent.snapshot["id"] and record.snapshot["reused"]
        assert record.properties["ContentSnapshotId"] == parent.snapshot["id"]
        values = json.loads(params[child.id])
        args = record.definition["arguments"]
        assert args == [
            "--data",
            "d.csv",
            "--alpha",
            values["--alpha"],
            "--kernel",
            values["--kernel"],
        ]
    # at most 2 at a time
    spans = [(c.record.created_at, c.record.end_time or 0) for c in children]
    assert max(sum(s <= t < e for s, e in spans) for t, _ in spans) <= 2


def test_results_have_the_references_shapes(
    experiment: Experiment, source: Path, fake: Callable[..., str]
) -> None:
    fake()
    run = experiment.submit(sweep_config(source, max_total_runs=3))
    run.wait_for_completion()
    ordered = run.get_children_sorted_by_primary_metric()
    assert [set(c) for c in ordered] == [
        {"run_id", "hyperparameters", "best_primary_metric", "status"}
    ] * 3
    assert all(c["best_primary_metric"] == 0.9 and c["status"] == "Completed" for c in ordered)
    assert len(run.get_children_sorted_by_primary_metric(top=2)) == 2
    metrics = run.get_metrics()
    assert set(metrics) == {f"{run.id}_{n}" for n in range(3)}
    assert metrics[f"{run.id}_0"] == {"acc": [0.5, 0.9, 0.7], "loss": 1.5}
    best = run.get_best_run_by_primary_metric()
    assert isinstance(best, Run) and best.id == ordered[0]["run_id"]
    assert run.hyperdrive_config._primary_metric_config == {"name": "acc", "goal": "maximize"}
    again = HyperDriveRun.get(experiment.workspace, run.id)
    assert again.hyperdrive_config._max_total_runs == 3
    assert again.get_hyperparameters() == run.get_hyperparameters()
    with pytest.raises(ConfigError, match="top"):
        run.get_children_sorted_by_primary_metric(top=-1)
    with pytest.raises(ConfigError, match="cancel"):
        run.fail()


def test_a_grid_stops_when_every_combination_has_run(
    experiment: Experiment, source: Path, fake: Callable[..., str]
) -> None:
    fake()
    grid = GridParameterSampling({"--a": choice(1, 2), "--b": choice("x", "y")})
    run = experiment.submit(sweep_config(source, hyperparameter_sampling=grid, max_total_runs=10))
    run.wait_for_completion()
    values = sorted(run.get_hyperparameters().values())
    assert len(values) == 4 and len(set(values)) == 4
    assert "the grid is done" in (run.run_dir / "user_logs" / "std_log.txt").read_text()


def test_cancel_stops_the_running_children_which_keep_what_they_logged(
    experiment: Experiment, source: Path, fake: Callable[..., str]
) -> None:
    fake(run_seconds=60)
    run = experiment.submit(sweep_config(source, max_total_runs=6, max_concurrent_runs=2))
    children = poll(
        lambda: [c for c in run.get_children() if "acc" in c.get_metrics()] or None,
        what="a child with metrics",
    )
    assert run.cancel()
    details = run.wait_for_completion(raise_on_error=False, timeout_seconds=60)
    assert details["status"] == "Canceled"
    first = Run.get(experiment.workspace, children[0].id)
    assert first.get_status() == "Canceled" and first.get_metrics()["acc"] == [0.5, 0.9, 0.7]
    assert len(list(run.get_children())) == 2  # no new child after the cancel
    assert not run.cancel()


def test_max_duration_cancels_the_sweep_with_the_reason(
    experiment: Experiment, source: Path, fake: Callable[..., str]
) -> None:
    fake(run_seconds=60)
    with pytest.warns(UserWarning, match="exceeds the service limit of 10080"):
        assert sweep_config(source, max_duration_minutes=20000)._max_duration_minutes == 10080
    run = experiment.submit(sweep_config(source, max_duration_minutes=0.02))
    details = run.wait_for_completion(raise_on_error=False, timeout_seconds=60)
    assert details["status"] == "Canceled"
    assert details["error"]["error"]["code"] == "MaxDurationReached"
    assert all(c.get_status() == "Canceled" for c in run.get_children())


def test_a_metric_no_child_logs_fails_the_sweep_saying_so(
    experiment: Experiment, source: Path, fake: Callable[..., str]
) -> None:
    fake()
    run = experiment.submit(
        sweep_config(
            source, primary_metric_name="accuracy", max_total_runs=8, max_concurrent_runs=2
        )
    )
    with pytest.raises(
        RunFailed, match="no child run logged the primary metric 'accuracy'"
    ) as info:
        run.wait_for_completion()
    assert "'acc'" in str(info.value) and "'loss'" in str(info.value)  # what they did log
    assert len(list(run.get_children())) < 8  # stopped early, not all trials burnt
    assert run.get_best_run_by_primary_metric() is None
    assert all(
        c["best_primary_metric"] is None for c in run.get_children_sorted_by_primary_metric()
    )
    assert run.get_children_sorted_by_primary_metric(discard_no_metric=True) == []


def test_a_script_that_fails_before_logging_stops_the_sweep(
    experiment: Experiment, source: Path, fake: Callable[..., str]
) -> None:
    fake(spool=[], exit_code=3, log=["Traceback (most recent call last):", "ValueError: bad data"])
    run = experiment.submit(sweep_config(source, max_total_runs=10, max_concurrent_runs=1))
    with pytest.raises(RunFailed, match=r"the first 3 child run\(s\) failed.*ValueError: bad data"):
        run.wait_for_completion()
    assert len(list(run.get_children())) == 3


def test_the_driver_may_exit_and_the_sweep_still_ends(
    workspace: Workspace, source: Path, fake: Callable[..., str], tmp_path: Path
) -> None:
    import subprocess
    import sys

    fake(run_seconds=0.3)
    driver = tmp_path / "driver.py"
    driver.write_text(
        "import sys\n"
        "from ferry import Workspace, Experiment, ScriptRunConfig\n"
        "from ferry.hyperdrive import *\n"
        "ws = Workspace(sys.argv[1])\n"
        f"src = ScriptRunConfig({str(source)!r}, 'train.py', compute_target='fake')\n"
        "hd = HyperDriveConfig(run_config=src, hyperparameter_sampling=RandomParameterSampling("
        "{'--a': uniform(0, 1)}), primary_metric_name='acc', primary_metric_goal='maximize', "
        "max_total_runs=4, max_concurrent_runs=1)\n"
        "print(Experiment(ws, 'sweeps').submit(hd).id)\n",
        encoding="utf-8",
    )
    out = subprocess.run(
        [sys.executable, str(driver), str(workspace.path)],
        capture_output=True,
        text=True,
        check=True,
    )
    sweep_id = out.stdout.strip()  # the driver has exited; nothing else calls ferry but reads
    record = poll(
        lambda: (r := workspace.store.get_run(sweep_id)).status.is_terminal() and r,
        what="the sweep to end",
    )
    assert record.status == RunStatus.COMPLETED
    children = workspace.store.list_runs(RunQuery(parent_id=sweep_id))
    assert sorted(c.status.value for c in children) == ["Completed"] * 4


def test_a_local_sweep_larger_than_the_process_limit_is_refused_before_anything_is_written(
    workspace: Workspace, experiment: Experiment, source: Path
) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    resource.setrlimit(resource.RLIMIT_NPROC, (60, hard))
    try:
        config = sweep_config(source, "local", max_total_runs=30, max_concurrent_runs=30)
        with pytest.raises(ConfigError, match=r"max_concurrent_runs=30 needs about 90 processes"):
            experiment.submit(config)
    finally:
        resource.setrlimit(resource.RLIMIT_NPROC, (soft, hard))
    assert workspace.store.list_runs(RunQuery(experiment="sweeps")) == []


def test_a_custom_run_id_names_the_sweep_and_must_be_a_plain_name(
    experiment: Experiment, source: Path, fake: Callable[..., str]
) -> None:
    fake()
    with pytest.raises(ConfigError, match="custom_run_id"):
        sweep_config(source, custom_run_id="../escape")
    run = experiment.submit(sweep_config(source, max_total_runs=1, custom_run_id="my-sweep.1"))
    assert run.id == "my-sweep.1" and run.wait_for_completion()["status"] == "Completed"
    assert [c.id for c in run.get_children()] == ["my-sweep.1_0"]
    assert json.loads(run.get_properties()["primary_metric_config"]) == {
        "name": "acc",
        "goal": "maximize",
    }  # what RunDetails sorts the children by
    with pytest.raises(ConfigError, match="exists already"):
        experiment.submit(sweep_config(source, max_total_runs=1, custom_run_id="my-sweep.1"))
