"""Docker runs on the local target pass the target conformance suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from docker_helpers import DockerConformanceEnv

from ferry.testing.conformance import SCENARIOS, Scenario


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_local_docker_runs_pass_the_conformance_suite(
    scenario: Scenario, workspace, awkward_dir: Path, engine
) -> None:  # type: ignore[no-untyped-def]
    scenario.run(DockerConformanceEnv(workspace, "local", awkward_dir / "scratch"))
