"""The ray target passes the target conformance suite on a Ray test cluster on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_ray_support import RayTestCluster, loopback_ray, ray_heartbeats, start_cluster

from ferry.compute import ComputeTarget
from ferry.testing.conformance import SCENARIOS, ConformanceEnv, Scenario

__all__ = ["loopback_ray", "ray_heartbeats"]


@pytest.fixture(scope="module")
def ray_cluster(loopback_ray: None) -> Iterator[RayTestCluster]:
    cluster = start_cluster([{"num_cpus": 2}])
    yield cluster
    cluster.stop()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_ray_target_conformance(  # type: ignore[no-untyped-def]
    scenario: Scenario, workspace, awkward_dir: Path, ray_cluster: RayTestCluster
) -> None:
    from ferry.compute import RayCluster

    config = RayCluster.attach_configuration(address=ray_cluster.address, lease_seconds=20)
    ComputeTarget.attach(workspace, "ray", config)
    scenario.run(ConformanceEnv(workspace, "ray", awkward_dir / "scratch"))
