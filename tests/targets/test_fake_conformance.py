"""The scripted fake target passes the same conformance suite (each scenario's job as a script)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferry.testing.conformance import SCENARIOS, ConformanceEnv, Scenario


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_fake_target_conformance(scenario: Scenario, workspace, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    scenario.run(ConformanceEnv(workspace, "fake", awkward_dir / "scratch", fake=True))
