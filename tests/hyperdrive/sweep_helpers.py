"""Helpers for the sweep tests: a sweep configuration and deadline polls."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ferry import ScriptRunConfig
from ferry.hyperdrive import (
    HyperDriveConfig,
    PrimaryMetricGoal,
    RandomParameterSampling,
    choice,
    uniform,
)


def sweep_config(
    source: Path,
    target: str = "fake",
    *,
    arguments: list[Any] | None = None,
    space: dict[str, Any] | None = None,
    seed: int | None = 1,
    **kwargs: Any,
) -> HyperDriveConfig:
    src = ScriptRunConfig(str(source), "train.py", arguments=arguments, compute_target=target)
    sampling = kwargs.pop("hyperparameter_sampling", None) or RandomParameterSampling(
        space or {"--alpha": uniform(0, 1), "--kernel": choice("linear", "rbf")},
        properties={"seed": seed} if seed is not None else None,
    )
    kwargs.setdefault("primary_metric_name", "acc")
    kwargs.setdefault("primary_metric_goal", PrimaryMetricGoal.MAXIMIZE)
    kwargs.setdefault("max_total_runs", 4)
    return HyperDriveConfig(run_config=src, hyperparameter_sampling=sampling, **kwargs)


def poll(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Wait until ``check()`` is truthy (a deadline, not a sleep); returns its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
