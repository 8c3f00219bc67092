"""HyperDriveConfig validation as the reference's, and the names importable everywhere."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
from sweep_helpers import sweep_config

import ferry.hyperdrive
from ferry import ScriptRunConfig
from ferry.errors import ConfigError
from ferry.hyperdrive import (
    BanditPolicy,
    BayesianParameterSampling,
    HyperDriveConfig,
    MedianStoppingPolicy,
    NoTerminationPolicy,
    PrimaryMetricGoal,
    RandomParameterSampling,
    choice,
    uniform,
)
from ferry.hyperdrive.sweep import child_arguments, remove_parameters

SAMPLING = RandomParameterSampling({"--a": uniform(0, 1)})


def config(**kwargs: Any) -> HyperDriveConfig:
    base: dict[str, Any] = {
        "hyperparameter_sampling": SAMPLING,
        "primary_metric_name": "acc",
        "primary_metric_goal": PrimaryMetricGoal.MAXIMIZE,
        "max_total_runs": 10,
        "run_config": ScriptRunConfig(".", "train.py"),
    }
    base.update(kwargs)
    return HyperDriveConfig(**base)


class StandIn:
    """What ferry.estimator.Estimator provides to sweeps: a ScriptRunConfig."""

    source_directory = "."

    def _to_script_run_config(self) -> ScriptRunConfig:
        return ScriptRunConfig(".", "train.py", arguments=["--a", 1])


def test_the_references_defaults() -> None:
    hd = config()
    assert hd._max_concurrent_runs == 10  # None: all at once
    assert hd._max_duration_minutes == 10080
    assert hd._policy_config == {"name": "Default"} and isinstance(hd.policy, NoTerminationPolicy)
    assert hd._primary_metric_config == {"name": "acc", "goal": "maximize"}
    assert config(primary_metric_goal="MINIMIZE")._primary_metric_config["goal"] == "minimize"
    assert PrimaryMetricGoal.from_str("maximize") is PrimaryMetricGoal.MAXIMIZE
    assert config(run_config=None, estimator=StandIn()).script_run_config().arguments == ["--a", 1]
    assert config().source_directory == "."


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"run_config": None}, "exactly one of estimator, run_config or pipeline"),
        ({"estimator": StandIn()}, "exactly one of"),
        ({"run_config": None, "pipeline": object()}, "pipeline"),
        ({"run_config": "train.py"}, "run_config must be a ScriptRunConfig"),
        ({"run_config": None, "estimator": object()}, "estimator must be an Estimator"),
        ({"hyperparameter_sampling": {"--a": uniform(0, 1)}}, "hyperparameter_sampling"),
        ({"primary_metric_name": ""}, "primary_metric_name"),
        ({"primary_metric_goal": "up"}, "'maximize' or 'minimize'"),
        ({"max_total_runs": 0}, "max_total_runs"),
        ({"max_concurrent_runs": 2.5}, "max_concurrent_runs"),
        ({"max_duration_minutes": -1}, "max_duration_minutes"),
        ({"policy": "bandit"}, "policy must be"),
        ({"resume_child_runs": ["x"]}, "resume_child_runs"),
        ({"resume_from": ["HD_x"]}, "resume_from expects HyperDriveRun"),
        (
            {
                "hyperparameter_sampling": BayesianParameterSampling({"--a": uniform(0, 1)}),
                "policy": MedianStoppingPolicy(),
            },
            "Bayesian sampling is not supported",
        ),
    ],
)
def test_bad_configurations_name_the_argument(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        config(**kwargs)


def test_bayesian_sampling_gives_the_references_advice() -> None:
    bayes = BayesianParameterSampling({"--a": uniform(0, 1), "--b": choice(1, 2)})
    with pytest.warns(UserWarning) as caught:
        config(hyperparameter_sampling=bayes, max_total_runs=30, max_concurrent_runs=25)
    messages = [str(w.message) for w in caught]
    assert any("Recommendend value:40" in m for m in messages)
    assert any("20 max concurrent runs or fewer" in m for m in messages)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config(
            hyperparameter_sampling=bayes,
            max_total_runs=40,
            max_concurrent_runs=4,
            policy=NoTerminationPolicy(),
        )


def test_sampled_parameters_replace_the_base_arguments() -> None:
    base = ["--data", "d.csv", "--alpha", 1, "--lr=0.5", "--verbose", "-n", "-3"]
    kept, removed = remove_parameters(base, ["alpha", "--lr", "--verbose", "n"])
    assert kept == ["--data", "d.csv"] and removed == ["--alpha", "--lr", "--verbose", "-n"]
    assert child_arguments(["--x", "1"], {"lr": 0.1, "--k": "rbf"}) == [
        "--x", "1", "--lr", 0.1, "--k", "rbf",
    ]  # fmt: skip


def test_a_bandit_policy_is_kept_in_the_wire_shape(tmp_path: Path) -> None:
    hd = sweep_config(tmp_path, policy=BanditPolicy(slack_factor=0.1, evaluation_interval=2))
    assert hd._policy_config["properties"]["evaluation_interval"] == 2


def test_every_name_is_importable_from_ferry_hyperdrive() -> None:
    names = {
        "HyperDriveConfig", "HyperDriveRun", "RandomParameterSampling", "GridParameterSampling",
        "BayesianParameterSampling", "BanditPolicy", "MedianStoppingPolicy",
        "TruncationSelectionPolicy", "NoTerminationPolicy", "PrimaryMetricGoal", "choice",
        "randint", "uniform", "quniform", "loguniform", "qloguniform", "normal", "qnormal",
        "lognormal", "qlognormal",
    }  # fmt: skip
    assert names <= set(ferry.hyperdrive.__all__)
    for name in ferry.hyperdrive.__all__:
        assert getattr(ferry.hyperdrive, name) is not None
