"""The local target passes the target conformance suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferry.testing.conformance import SCENARIOS, ConformanceEnv, Scenario


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_local_target_conformance(scenario: Scenario, workspace, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    scenario.run(ConformanceEnv(workspace, "local", awkward_dir / "scratch"))
