"""``experiment.submit(estimator)`` on the local target, for real: a plain Estimator takes the
fast path (no build), one with a package builds it, an SKLearn estimator builds Python 3.8 with
scikit-learn and trains a model; what cannot run is refused before a run exists."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from ferry import Experiment, Run, Workspace
from ferry.errors import ConfigError, TargetError
from ferry.estimator import Estimator, SKLearn
from ferry.runconfig import PyTorchConfiguration

REPORT = """\
import json, os, sys
from azureml.core import Run
run = Run.get_context()
run.log("minor", sys.version_info[1])
print("ARGV", json.dumps(sys.argv[1:]))
print("PREFIX", sys.prefix)
print("SEED", os.environ.get("SEED"), "RANK", os.environ.get("RANK"))
"""

TRAIN = """\
import argparse, sys
import numpy, sklearn
from sklearn.linear_model import Ridge
from azureml.core import Run

parser = argparse.ArgumentParser()
parser.add_argument("--alpha", type=float, required=True)
parser.add_argument("--fit-intercept", action="store_true")
args = parser.parse_args()
x = numpy.arange(20.0).reshape(-1, 1)
model = Ridge(alpha=args.alpha, fit_intercept=args.fit_intercept).fit(x, 3 * x.ravel() + 2)
run = Run.get_context()
run.log("alpha", args.alpha)
run.log("coef", round(float(model.coef_[0]), 3))
run.log("intercept", round(float(model.intercept_), 3))
print("TRAINED", "%d.%d" % sys.version_info[:2], sklearn.__version__, numpy.__version__)
"""


def _folder(root: Path, body: str) -> Path:
    folder = root / "sr c 'q'"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(textwrap.dedent(body), encoding="utf-8")
    return folder


def _log(run: Run) -> str:
    details = run.wait_for_completion(raise_on_error=False)
    text = Path(details["logFiles"]["user_logs/std_log.txt"]).read_text(encoding="utf-8")
    assert details["status"] == "Completed", text
    return text


def _built(ws: Workspace) -> list[Path]:
    return [p.parent for p in ws.envs_dir.glob("*/ferry-env.json")]


def test_a_plain_estimator_runs_with_the_targets_python(
    workspace: Workspace, awkward_dir: Path
) -> None:
    est = Estimator(
        str(_folder(awkward_dir, REPORT)),
        compute_target="local",
        entry_script="train.py",
        script_params={"--alpha": 0.5, "--verbose": None, "--ids": [1, 2], "--name": "a b"},
        environment_variables={"SEED": "7"},
        max_run_duration_seconds=600,
    )
    run = Experiment(workspace, "est").submit(est, tags={"team": "a"})
    log = _log(run)
    assert 'ARGV ["--alpha", "0.5", "--verbose", "--ids", "1", "2", "--name", "a b"]' in log
    assert f"PREFIX {sys.prefix}\n" in log, "nothing beyond the defaults: the fast path"
    assert "SEED 7 RANK None" in log
    assert "plain environment" in log and "azureml-defaults: not installed" in log
    assert _built(workspace) == [], "no build, no environment folder"
    assert run.get_metrics() == {"minor": sys.version_info[1]}
    assert run.get_tags()["team"] == "a"
    definition = run.get_details()["runDefinition"]
    assert definition["maxRunDurationSeconds"] == 600
    assert definition["environment"]["docker"]["enabled"] is True, "recorded as asked"


def test_an_estimator_with_a_package_builds_it_and_overrides_apply(
    workspace: Workspace, awkward_dir: Path
) -> None:
    body = REPORT + "import six; print('SIX', six.__version__)\n"
    est = Estimator(
        str(_folder(awkward_dir, body)),
        compute_target="local",
        entry_script="train.py",
        script_params={"--a": 1, "--b": 2},
        pip_packages=["six==1.17.0"],
        use_docker=False,
    )
    run = Experiment(workspace, "est").submit(est, script_params={"--b": 3, "--c": None})
    log = _log(run)
    assert "SIX 1.17.0\n" in log and 'ARGV ["--a", "1", "--b", "3", "--c"]' in log
    (built,) = _built(workspace)
    assert f"PREFIX {built}\n" in log and "plain environment" not in log
    assert est.script_params == {"--a": 1, "--b": 2}, "the override is for that submit only"


def test_sklearn_builds_scikit_learn_and_trains(workspace: Workspace, awkward_dir: Path) -> None:
    est = SKLearn(
        str(_folder(awkward_dir, TRAIN)),
        compute_target="local",
        entry_script="train.py",
        script_params={"--alpha": 1e-9, "--fit-intercept": ""},
    )
    t = time.monotonic()
    run = Experiment(workspace, "sk").submit(est)
    log = _log(run)
    elapsed = time.monotonic() - t
    assert "TRAINED 3.8 0.22.2.post1 1.17.5" in log, log
    assert run.get_metrics() == {"alpha": 1e-9, "coef": 3.0, "intercept": 2.0}
    (built,) = _built(workspace)
    lock = (built / "lock.txt").read_text()
    assert "scikit-learn==0.22.2.post1" in lock and "azureml" not in lock
    assert "framework_version 0.20.3" not in log  # said at construction, not per run
    properties = run.get_properties()
    assert properties.get("ferry.environment.hash") == built.name
    print(f"SKLearn estimator: build + run {elapsed:.1f} s")  # measured, shown with -s


def test_an_explicit_image_is_refused_before_a_run_exists(
    workspace: Workspace, awkward_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No engine answers (none runs in these tests): an explicit image is refused at submit."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    est = Estimator(
        str(_folder(awkward_dir, REPORT)),
        compute_target="local",
        entry_script="train.py",
        custom_docker_image="me/trainer:1",
    )
    experiment = Experiment(workspace, "est")
    with pytest.raises(TargetError, match="no Docker engine answers"):
        experiment.submit(est)
    assert list(experiment.get_runs()) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"entry_script": "missing.py"}, "entry_script 'missing.py' does not exist in source_dir"),
        ({"source_directory": "nowhere"}, "source_directory .*nowhere.* does not exist"),
    ],
)
def test_a_missing_script_is_refused_naming_the_argument(
    workspace: Workspace, awkward_dir: Path, kwargs: dict[str, Any], match: str
) -> None:
    folder = _folder(awkward_dir, REPORT)
    source = kwargs.pop("source_directory", None)
    est = Estimator(
        str(folder / source) if source else str(folder),
        compute_target="local",
        **{"entry_script": "train.py", **kwargs},
    )
    experiment = Experiment(workspace, "est")
    with pytest.raises(ConfigError, match=match):
        experiment.submit(est)
    with pytest.raises(ConfigError, match=r"\['node_count'\] parameters cannot be overridden"):
        experiment.submit(est, node_count=2)
    assert list(experiment.get_runs()) == []


def test_a_distributed_estimator_runs_its_ranks(workspace: Workspace, awkward_dir: Path) -> None:
    est = Estimator(
        str(_folder(awkward_dir, REPORT)),
        compute_target="local",
        entry_script="train.py",
        distributed_training=PyTorchConfiguration("Gloo", process_count=2),
    )
    run = Experiment(workspace, "est").submit(est)
    log = _log(run)
    assert "RANK 0" in log
    details = run.get_details()
    rank1 = Path(details["logFiles"]["user_logs/std_log_rank_1.txt"]).read_text()
    assert "RANK 1" in rank1
    assert json.loads(json.dumps(details["runDefinition"]["pytorch"]))["processCount"] == 2
