"""The target conformance suite, once through a remote workspace: the local target of the
server's machine, submitted and followed over HTTP, supervised by the server."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferry.testing.conformance import SCENARIOS, ConformanceEnv, Scenario


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_remote_workspace_conformance(scenario: Scenario, remote_ws, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    scenario.run(ConformanceEnv(remote_ws, "local", awkward_dir / "scratch"))
