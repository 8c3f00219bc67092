"""The ssh target passes the target conformance suite against a real sshd on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
import sshd
from sshd import SshServer

from ferry.compute import ComputeTarget, RemoteCompute
from ferry.testing.conformance import SCENARIOS, ConformanceEnv, Scenario

ssh_server = sshd.ssh_server  # the fixtures, by name
remote_root = sshd.remote_root


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_ssh_target_conformance(  # type: ignore[no-untyped-def]
    scenario: Scenario, workspace, awkward_dir: Path, ssh_server: SshServer, remote_root: Path
) -> None:
    config = ssh_server.attach_config(work_dir=str(remote_root))
    ComputeTarget.attach(workspace, "vm", RemoteCompute.attach_configuration(**config))
    scenario.run(ConformanceEnv(workspace, "vm", awkward_dir / "scratch"))
