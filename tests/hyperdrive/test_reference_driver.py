"""A tuning driver written for the reference runs unchanged with the compatibility package."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ferry import Workspace

ROOT = Path(__file__).resolve().parents[2]
COMPAT = ROOT / "compat" / "azureml" / "src"

TRAIN = """\
import argparse
from azureml.core import Run

parser = argparse.ArgumentParser()
parser.add_argument("--input-data", type=str)
parser.add_argument("--learning_rate", type=float)
parser.add_argument("--n_estimators", type=int)
args = parser.parse_args()
run = Run.get_context()
run.log("AUC", 1 - abs(args.learning_rate - 0.1) - args.n_estimators / 1000)
"""

# the reference's HyperDrive sample (mslearn-dp100), on the local target
DRIVER = """\
import sys
from azureml.core import Experiment, ScriptRunConfig, Workspace
from azureml.train.hyperdrive import (GridParameterSampling, HyperDriveConfig,
                                      PrimaryMetricGoal, choice)
from azureml.train.hyperdrive.run import HyperDriveRun

ws = Workspace.from_config()
script_config = ScriptRunConfig(source_directory=sys.argv[1], script="diabetes_training.py",
                                arguments=["--input-data", "diabetes.csv"],
                                compute_target="local")
params = GridParameterSampling({"--learning_rate": choice(0.01, 0.1, 1.0),
                                "--n_estimators": choice(10, 100)})
hyperdrive = HyperDriveConfig(run_config=script_config, hyperparameter_sampling=params,
                              policy=None, primary_metric_name="AUC",
                              primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
                              max_total_runs=6, max_concurrent_runs=2)
experiment = Experiment(workspace=ws, name="mslearn-diabetes-hyperdrive")
run = experiment.submit(config=hyperdrive)
run.wait_for_completion()
assert isinstance(run, HyperDriveRun)
for child_run in run.get_children_sorted_by_primary_metric():
    print(child_run)
best_run = run.get_best_run_by_primary_metric()
best_run_metrics = best_run.get_metrics()
parameter_values = best_run.get_details()["runDefinition"]["arguments"]
print("Best Run Id:", best_run.id)
print(" -AUC:", best_run_metrics["AUC"])
print(" -Arguments:", parameter_values)
"""


def test_the_references_hyperdrive_sample_runs_unchanged(tmp_path: Path) -> None:
    source = tmp_path / "diabetes training"
    source.mkdir()
    (source / "diabetes_training.py").write_text(TRAIN, encoding="utf-8")
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER, encoding="utf-8")
    Workspace.create(tmp_path / "ws").write_config(tmp_path)
    out = subprocess.run(
        [sys.executable, str(driver), str(source)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(COMPAT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert sum(line.startswith("{'run_id': 'HD_") for line in lines) == 6
    assert " -AUC: 0.99" in out.stdout
    assert "'--learning_rate', 0.1, '--n_estimators', 10]" in out.stdout
