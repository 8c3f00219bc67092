"""The reference's module paths for estimators (``azureml.train.estimator``,
``azureml.train.sklearn``, ``azureml.train.dnn``) serve ferry's classes, and a driver written
for the reference submits an Estimator through them unchanged (in a fresh interpreter, with the
compatibility package on its path, as a user has it)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import ferry.estimator

COMPAT = Path(__file__).resolve().parents[2] / "compat" / "azureml" / "src"

DRIVER = """\
from azureml.core import Experiment, Workspace
from azureml.train.estimator import Estimator, Gloo, Mpi, Nccl, ParameterServer
from azureml.train.sklearn import SKLearn
from azureml.train.dnn import PyTorch, TensorFlow
from azureml.train import dnn, estimator, sklearn
import ferry.estimator as fe

for module, names in ((estimator, ["Estimator", "Gloo", "Mpi", "Nccl", "ParameterServer"]),
                      (sklearn, ["SKLearn"]),
                      (dnn, ["Gloo", "Mpi", "Nccl", "ParameterServer", "PyTorch", "TensorFlow"])):
    assert sorted(module.__all__) == names, module.__all__
    assert all(getattr(module, n) is getattr(fe, n) for n in names)

ws = Workspace.from_config()
est = Estimator(source_directory="src", compute_target="local", entry_script="train.py",
                script_params={"--data-folder": "data", "--regularization": 0.5})
run = Experiment(workspace=ws, name="compat-estimator").submit(est)
run.wait_for_completion(show_output=False)
print("STATUS", run.get_status(), "METRICS", run.get_metrics())
"""

TRAIN = """\
import argparse
from azureml.core import Run
parser = argparse.ArgumentParser()
parser.add_argument("--data-folder")
parser.add_argument("--regularization", type=float)
args = parser.parse_args()
Run.get_context().log("regularization", args.regularization)
"""


def test_a_reference_driver_submits_an_estimator_through_the_azureml_paths(
    awkward_dir: Path,
) -> None:
    (awkward_dir / "src").mkdir()
    (awkward_dir / "src" / "train.py").write_text(textwrap.dedent(TRAIN))
    (awkward_dir / "driver.py").write_text(DRIVER)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(COMPAT), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, "driver.py"],
        cwd=awkward_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "STATUS Completed METRICS {'regularization': 0.5}" in out.stdout, out.stdout
    assert "'Estimator' is deprecated. Please use 'ScriptRunConfig'" in out.stderr


def test_every_public_name_is_exported() -> None:
    assert sorted(ferry.estimator.__all__) == [
        "Estimator", "Gloo", "Mpi", "Nccl", "ParameterServer", "PyTorch", "SKLearn", "TensorFlow",
    ]  # fmt: skip
    assert all(hasattr(ferry.estimator, name) for name in ferry.estimator.__all__)
