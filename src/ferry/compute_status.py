"""What ``AmlCompute.get_status()`` and ``list_nodes()`` answer, in the reference's shapes.

A status is built from the cluster's stored settings and what its head reports (the worker
nodes the GCS knows alive, the nodes Ray's autoscaler is starting); a node is ``running`` while
a run holds its CPUs, else ``idle``. ``serialize()`` gives the reference's camelCase dict::

    cluster.get_status().serialize()
    # {'currentNodeCount': 1, 'targetNodeCount': 1, 'nodeStateCounts': {'preparingNodeCount': 0,
    #  'runningNodeCount': 1, 'idleNodeCount': 0, …}, 'allocationState': 'Steady', …}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


def _duration(seconds: float | None) -> str:
    """The reference's ISO-8601 duration (``PT120S``)."""
    return f"PT{int(seconds)}S" if seconds else ""


@dataclass
class ScaleSettings:
    """A cluster's node counts and idle time, as the reference's ``ScaleSettings``."""

    minimum_node_count: int
    maximum_node_count: int | None
    idle_seconds_before_scaledown: int | None

    def serialize(self) -> dict[str, Any]:
        return {
            "minNodeCount": self.minimum_node_count,
            "maxNodeCount": self.maximum_node_count,
            "nodeIdleTimeBeforeScaleDown": _duration(self.idle_seconds_before_scaledown),
        }

    @staticmethod
    def deserialize(object_dict: Mapping[str, Any]) -> ScaleSettings:
        idle = str(object_dict.get("nodeIdleTimeBeforeScaleDown") or "")
        seconds = int(idle[2:-1]) if idle.startswith("PT") and idle.endswith("S") else None
        return ScaleSettings(
            int(object_dict["minNodeCount"]), object_dict.get("maxNodeCount"), seconds
        )


@dataclass
class AmlComputeNodeStateCounts:
    """How many nodes are in each state."""

    idle_node_count: int = 0
    leaving_node_count: int = 0
    preempted_node_count: int = 0
    preparing_node_count: int = 0
    running_node_count: int = 0
    unusable_node_count: int = 0

    def serialize(self) -> dict[str, int]:
        return {
            "preparingNodeCount": self.preparing_node_count,
            "runningNodeCount": self.running_node_count,
            "idleNodeCount": self.idle_node_count,
            "unusableNodeCount": self.unusable_node_count,
            "leavingNodeCount": self.leaving_node_count,
            "preemptedNodeCount": self.preempted_node_count,
        }


@dataclass
class AmlComputeStatus:
    """A cluster's state now, as the reference's ``AmlComputeStatus``."""

    allocation_state: str
    allocation_state_transition_time: datetime | None
    creation_time: datetime | None
    current_node_count: int
    errors: list[dict[str, Any]] | None
    modified_time: datetime | None
    node_state_counts: AmlComputeNodeStateCounts
    provisioning_state: str
    provisioning_state_transition_time: datetime | None
    scale_settings: ScaleSettings
    target_node_count: int
    vm_priority: str
    vm_size: str
    #: ferry's: whether the cluster's Ray head runs (a stopped one starts with the next run)
    head_running: bool = True

    def serialize(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "currentNodeCount": self.current_node_count,
            "targetNodeCount": self.target_node_count,
            "nodeStateCounts": self.node_state_counts.serialize(),
            "allocationState": self.allocation_state,
            "allocationStateTransitionTime": iso(self.allocation_state_transition_time),
            "errors": self.errors,
            "creationTime": iso(self.creation_time),
            "modifiedTime": iso(self.modified_time),
            "provisioningState": self.provisioning_state,
            "provisioningStateTransitionTime": iso(self.provisioning_state_transition_time),
            "scaleSettings": self.scale_settings.serialize(),
            "vmPriority": self.vm_priority.capitalize(),
            "vmSize": self.vm_size,
        }


def status_of(config: Mapping[str, Any], report: Any) -> AmlComputeStatus:
    """The status of a cluster with stored settings ``config``; ``report`` is its head's
    :class:`~ferry.targets.ray.managed.ClusterReport`, or None when the head is stopped."""
    workers = list(report.workers) if report is not None else []
    running = sum(1 for n in workers if n.busy)
    launching = int(report.launching) if report is not None else 0
    created = config.get("created_on")
    counts = AmlComputeNodeStateCounts(
        idle_node_count=len(workers) - running,
        running_node_count=running,
        preparing_node_count=launching,
        unusable_node_count=int(report.failed) if report is not None else 0,
    )
    return AmlComputeStatus(
        allocation_state="Resizing" if launching else "Steady",
        allocation_state_transition_time=None,
        creation_time=datetime.fromisoformat(created) if created else None,
        current_node_count=len(workers),
        errors=None,
        modified_time=datetime.now(UTC),
        node_state_counts=counts,
        provisioning_state="Succeeded",
        provisioning_state_transition_time=None,
        scale_settings=ScaleSettings(
            int(config.get("min_nodes") or 0),
            int(config["max_nodes"]),
            int(config.get("idle_seconds_before_scaledown") or 1800),
        ),
        target_node_count=len(workers) + launching,
        vm_priority=str(config.get("vm_priority") or "dedicated"),
        vm_size=str(config.get("vm_size") or config["shape"]["name"]),
        head_running=report is not None,
    )


def nodes_of(report: Any) -> list[dict[str, Any]]:
    """The reference's ``list_nodes()`` entries for the nodes of ``report`` (none if None)."""
    if report is None:
        return []
    return [
        {
            "nodeId": n.node_id,
            "privateIpAddress": n.address,
            "publicIpAddress": None,
            "port": n.port,
            "nodeState": "running" if n.busy else "idle",
            "runId": None,
        }
        for n in report.workers
    ]
