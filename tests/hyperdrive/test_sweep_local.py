"""Sweeps of real scripts on the local target: arguments delivered, a bad child cut short."""

from __future__ import annotations

import json
from pathlib import Path

from sweep_helpers import sweep_config

from ferry import Experiment
from ferry.hyperdrive import (
    BanditPolicy,
    GridParameterSampling,
    RandomParameterSampling,
    choice,
    uniform,
)

TRAIN = """\
import argparse, os, time
from ferry import Run

parser = argparse.ArgumentParser()
parser.add_argument("--alpha", type=float, default=0.0)
parser.add_argument("--kernel", default="none")
parser.add_argument("--quality", type=float, default=1.0)
parser.add_argument("--steps", type=int, default=1)
args = parser.parse_args()
run = Run.get_context()
for step in range(1, args.steps + 1):
    run.log("acc", args.quality * step / args.steps + args.alpha)
    if args.steps > 1:
        time.sleep(0.1)
os.makedirs("outputs", exist_ok=True)
with open("outputs/args.txt", "w") as fh:
    fh.write(f"{args.alpha} {args.kernel}")
"""


def _script(source: Path) -> None:
    (source / "train.py").write_text(TRAIN, encoding="utf-8")


def test_a_local_sweep_runs_the_script_with_each_childs_values(
    experiment: Experiment, source: Path
) -> None:
    _script(source)
    sampling = RandomParameterSampling(
        {"--alpha": uniform(0, 1), "--kernel": choice("linear", "rbf")}, properties={"seed": 5}
    )
    config = sweep_config(
        source, "local", hyperparameter_sampling=sampling, max_total_runs=4, max_concurrent_runs=2
    )
    run = experiment.submit(config)
    assert run.wait_for_completion(timeout_seconds=240)["status"] == "Completed"
    params = {k: json.loads(v) for k, v in run.get_hyperparameters().items()}
    metrics = run.get_metrics()
    for child in run.get_children():
        assert child.get_status() == "Completed"
        assert metrics[child.id]["acc"] == 1.0 + params[child.id]["--alpha"]
        assert "outputs/args.txt" in child.get_file_names()
    best = run.get_children_sorted_by_primary_metric()[0]
    assert best["best_primary_metric"] == max(1.0 + p["--alpha"] for p in params.values())


def test_a_bandit_policy_cuts_a_bad_child_short_which_keeps_what_it_logged(
    experiment: Experiment, source: Path
) -> None:
    _script(source)
    grid = GridParameterSampling({"--quality": choice(1.0, 0.1)})
    config = sweep_config(
        source,
        "local",
        arguments=["--steps", 30],
        hyperparameter_sampling=grid,
        policy=BanditPolicy(slack_factor=0.1, evaluation_interval=1, delay_evaluation=3),
        max_total_runs=2,
    )
    run = experiment.submit(config)
    assert run.wait_for_completion(timeout_seconds=240)["status"] == "Completed"
    good, bad = run.get_children()
    assert good.get_status() == "Completed" and len(good.get_metrics()["acc"]) == 30
    assert bad.get_status() == "Canceled"
    logged = bad.get_metrics()["acc"]
    assert 3 <= len(logged) < 30  # cut short, after the delay, with what it had logged kept
    assert "Bandit" in (bad.get_tags().get("ferry.hyperdrive.terminated") or "")
    assert "terminated at interval" in (run.run_dir / "user_logs" / "std_log.txt").read_text()
    assert run.get_best_run_by_primary_metric().id == good.id  # type: ignore[union-attr]


def test_each_child_of_a_sweep_reads_the_dataset_its_arguments_name(
    experiment: Experiment, source: Path
) -> None:
    """The Keras/TensorFlow tuning notebooks pass ``dataset.as_mount()`` in the arguments: every
    child gets the path to the version fixed at submit, not the placeholder's text."""
    from ferry.data import Dataset

    ws = experiment.workspace
    data = source.parent / "mnist"
    data.mkdir()
    (data / "train.csv").write_text("x,y\n1,2\n", encoding="utf-8")
    ds = ws.get_default_datastore()
    ds.upload(str(data), "mnist", show_progress=False)
    dataset = Dataset.File.from_files(path=[(ds, "mnist/**")])
    (source / "train.py").write_text(
        "import argparse, os\nfrom ferry import Run\n"
        "p = argparse.ArgumentParser()\np.add_argument('--data')\np.add_argument('--alpha')\n"
        "a = p.parse_args()\n"
        "Run.get_context().log('acc', float(os.path.isfile(os.path.join(a.data, 'train.csv'))))\n",
        encoding="utf-8",
    )
    config = sweep_config(
        source, "local", arguments=["--data", dataset.as_named_input("mnist").as_mount()],
        hyperparameter_sampling=GridParameterSampling({"--alpha": choice(1, 2)}),
        max_total_runs=2, max_concurrent_runs=2,
    )  # fmt: skip
    run = experiment.submit(config)
    assert run.wait_for_completion(timeout_seconds=240)["status"] == "Completed"
    assert sorted(m["acc"] for m in run.get_metrics().values()) == [1.0, 1.0]
