"""Helpers for the estimator tests: an estimator with the usual arguments, and what submit would
store (the definition) and run (the job), without starting anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ferry.estimator import Estimator
from ferry.jobdef import job_spec
from ferry.spec import JobSpec


def est(**kwargs: Any) -> Estimator:
    kwargs.setdefault("compute_target", "local")
    kwargs.setdefault("entry_script", "train.py")
    return Estimator(kwargs.pop("source_directory", "src"), **kwargs)


def definition(estimator: Estimator, **overrides: Any) -> dict[str, Any]:
    """What submit stores: the run configuration's dict and the source folder."""
    return estimator._to_script_run_config(**overrides).to_dict()


def job(estimator: Estimator) -> JobSpec:
    """What the machinery would run (the one validator of stored definitions)."""
    rc = estimator._to_script_run_config().run_config
    return job_spec(
        run_id="e_1_00000000",
        experiment="e",
        target=rc.target,
        run_dir=Path("/nonexistent/run"),
        definition=definition(estimator),
    )
