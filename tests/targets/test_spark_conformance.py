"""The Spark target passes the target conformance suite (real spark-submit, ``local[2]``).

The suite's scripts are plain Python; a Spark target runs only PySpark jobs, so the suite submits
them with ``framework="PySpark"`` and each one goes through spark-submit and its JVM.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ferry.compute import ComputeTarget, SparkCompute
from ferry.testing.conformance import SCENARIOS, ConformanceEnv, Scenario


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_spark_target_conformance(scenario: Scenario, workspace, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    ComputeTarget.attach(workspace, "spark", SparkCompute.attach_configuration(master="local[2]"))
    env = ConformanceEnv(workspace, "spark", awkward_dir / "scratch", framework="PySpark")
    scenario.run(env)
