"""Every public name is importable from ``ferry``, and importing ``ferry`` stays cheap."""

from __future__ import annotations

import subprocess
import sys

import ferry


def test_every_name_in_all_resolves() -> None:
    missing = [name for name in ferry.__all__ if getattr(ferry, name, None) is None]
    assert missing == []
    assert sorted(dir(ferry)) == sorted(ferry.__all__)


def test_importing_ferry_imports_no_heavy_library() -> None:
    """`from ferry import Run` runs in jobs and notebooks: no SQLAlchemy, Ray, asyncssh,
    pyspark or optuna until a name that needs one is used."""
    code = (
        "import sys, ferry\n"
        "heavy = [m for m in ('sqlalchemy', 'ray', 'asyncssh', 'pyspark', 'optuna', 'docker')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_reference_names_of_the_sweep_and_estimator_issues_are_here() -> None:
    for name in (
        "HyperDriveConfig", "RandomParameterSampling", "BanditPolicy", "PrimaryMetricGoal",
        "choice", "uniform", "loguniform", "Estimator", "SKLearn", "PyTorch", "TensorFlow",
        "AmlCompute", "HDInsightCompute", "ComputeTargetException", "RunDetails", "VERSION",
    ):  # fmt: skip
        assert name in ferry.__all__, name
