"""Sweep files: a job file as for ``ferry submit``, plus a ``sweep:`` section.

Example ``sweep.yml``::

    experiment: diabetes
    source_directory: src
    script: train.py
    arguments: [--data, diabetes.csv]
    sweep:
      sampling: random                  # random | grid | bayesian
      parameters:
        --alpha: "uniform(0, 1)"        # any parameter expression, as text
        --kernel: "choice('linear', 'rbf')"
        --depth: [2, 4, 8]              # a list is a choice
      policy: {bandit: {slack_factor: 0.1, evaluation_interval: 1}}   # or median, truncation
      metric: r2
      goal: maximize
      max_total_runs: 20
      max_concurrent_runs: 4
      max_duration_minutes: 60
      seed: 7

The job part is read by :func:`ferry.jobfile.load_job` (the same rules and messages as
``ferry submit``); the ``sweep:`` section is checked here, every problem naming the key and the
allowed values.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ferry.errors import ConfigError
from ferry.hyperdrive.config import HyperDriveConfig, PrimaryMetricGoal
from ferry.hyperdrive.expressions import ParameterExpression, choice, parse_expression
from ferry.hyperdrive.policy import (
    BanditPolicy,
    EarlyTerminationPolicy,
    MedianStoppingPolicy,
    NoTerminationPolicy,
    TruncationSelectionPolicy,
)
from ferry.hyperdrive.sampling import (
    BayesianParameterSampling,
    GridParameterSampling,
    HyperParameterSampling,
    RandomParameterSampling,
)
from ferry.jobfile import JobFile, load_job, read_yaml

SAMPLINGS: dict[str, type[HyperParameterSampling]] = {
    "random": RandomParameterSampling,
    "grid": GridParameterSampling,
    "bayesian": BayesianParameterSampling,
}
POLICIES: dict[str, type[EarlyTerminationPolicy]] = {
    "bandit": BanditPolicy,
    "median": MedianStoppingPolicy,
    "median_stopping": MedianStoppingPolicy,
    "truncation": TruncationSelectionPolicy,
    "truncation_selection": TruncationSelectionPolicy,
    "none": NoTerminationPolicy,
}
KEYS = (
    "sampling",
    "parameters",
    "policy",
    "metric",
    "goal",
    "max_total_runs",
    "max_concurrent_runs",
    "max_duration_minutes",
    "seed",
)


def load_sweep(path: Path) -> tuple[JobFile, HyperDriveConfig]:
    """Parse a sweep file: the job, and the sweep configuration built on it."""
    data = read_yaml(path, "sweep file")
    if not isinstance(data, dict) or not isinstance(data.get("sweep"), dict):
        raise ConfigError(
            f"sweep file {path} needs a 'sweep:' section (sampling, parameters, metric, goal, "
            "max_total_runs …) beside the job's keys; see `ferry sweep --help`"
        )
    section = data.pop("sweep")
    job = load_job(path, data)
    where = f"{path}: sweep"
    try:
        config = sweep_config(section, job, where)
    except ConfigError as exc:  # every message names the file
        text = str(exc)
        raise ConfigError(text if str(path) in text else f"{where}: {text}") from None
    return job, config


def _parameter(name: str, value: Any, where: str) -> ParameterExpression:
    if isinstance(value, str):
        return parse_expression(value, f"{where}.parameters.{name}")
    if isinstance(value, list):
        return choice(value)
    raise ConfigError(
        f'{where}.parameters.{name} must be an expression as text ("uniform(0, 1)") or a list '
        f"of values (a choice), not {value!r}"
    )


def _policy(value: Any, where: str) -> EarlyTerminationPolicy:
    if value is None or value == "none":
        return NoTerminationPolicy()
    if isinstance(value, str):
        value = {value: {}}
    if not isinstance(value, Mapping) or len(value) != 1:
        raise ConfigError(
            f"{where}.policy must name one policy with its arguments, like "
            "{bandit: {slack_factor: 0.1}}; policies: " + ", ".join(POLICIES)
        )
    ((name, arguments),) = value.items()
    cls = POLICIES.get(str(name).lower())
    if cls is None:
        raise ConfigError(
            f"{where}.policy: unknown policy {name!r}; use one of {', '.join(POLICIES)}"
        )
    arguments = arguments or {}
    if not isinstance(arguments, Mapping):
        raise ConfigError(f"{where}.policy.{name} must be a mapping of its arguments")
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(arguments) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{where}.policy.{name}: unknown argument {unknown[0]!r}; "
            f"{cls.__name__} takes {', '.join(allowed) or 'no arguments'}"
        )
    try:
        return cls(**arguments)
    except TypeError as exc:
        raise ConfigError(f"{where}.policy.{name}: {exc}") from None


def sweep_config(section: Mapping[str, Any], job: JobFile, where: str) -> HyperDriveConfig:
    """A HyperDriveConfig from a sweep section and the job it sweeps."""
    unknown = [k for k in section if k not in KEYS]
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in {where}; allowed keys: {', '.join(KEYS)}")
    for key in ("parameters", "metric", "max_total_runs"):
        if key not in section:
            raise ConfigError(f"{where} needs {key!r}")
    method = str(section.get("sampling", "random")).lower()
    if method not in SAMPLINGS:
        raise ConfigError(f"{where}.sampling must be one of {', '.join(SAMPLINGS)}, not {method!r}")
    parameters = section["parameters"]
    if not isinstance(parameters, Mapping) or not parameters:
        raise ConfigError(
            f"{where}.parameters must map names to expressions, like --alpha: uniform(0, 1)"
        )
    space = {str(name): _parameter(str(name), value, where) for name, value in parameters.items()}
    seed = section.get("seed")
    sampling = SAMPLINGS[method](space, {"seed": seed} if seed is not None else None)
    kwargs: dict[str, Any] = {}
    for key in ("max_concurrent_runs", "max_duration_minutes"):
        if section.get(key) is not None:
            kwargs[key] = section[key]
    return HyperDriveConfig(
        run_config=job.config,
        hyperparameter_sampling=sampling,
        policy=_policy(section.get("policy"), where),
        primary_metric_name=section["metric"],
        primary_metric_goal=PrimaryMetricGoal.from_str(str(section.get("goal", "maximize"))),
        max_total_runs=section["max_total_runs"],
        **kwargs,
    )
