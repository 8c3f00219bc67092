"""The ``amlcompute`` target: runs on a managed Ray cluster that Ray's autoscaler sizes.

Everything the ``ray`` target does holds (snapshots by blob, environments built on the nodes,
live logs and metrics, outputs, cancel, distributed runs): this kind *is* the Ray target, with
three differences. Its cluster is ferry's own — started when the target is created, and again
by the first run that finds it stopped (after a reboot). A run asks for whole nodes of the
cluster's shape (one per node of a distributed run), as on the reference's clusters, so the
autoscaler starts a node for it when none is free. And a run the cluster cannot hold *now* is
not refused because no node is up: it is refused only when ``max_nodes`` nodes of the shape
could never hold it; meanwhile it shows Queued with what it waits for.

Example::

    config = AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=2,
                                                   idle_seconds_before_scaledown=120)
    cluster = ComputeTarget.create(ws, "cpu-cluster", config)
    Experiment(ws, "exp").submit(ScriptRunConfig("src", "train.py", compute_target=cluster))
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import ray

from ferry.errors import TargetRefused, TargetUnavailable
from ferry.spec import JobSpec, PrepareContext, WorkspaceServices
from ferry.targets.base import Prepared
from ferry.targets.ray.autoscale import KIND, ManagedSettings
from ferry.targets.ray.cluster import Placement, format_resources
from ferry.targets.ray.connect import connect, nodes
from ferry.targets.ray.managed import (
    cluster_folder,
    ensure_running,
    is_running,
    node_report,
    read_state,
)
from ferry.targets.ray.streams import StreamWriter
from ferry.targets.ray.target import RayTarget


class ManagedRayTarget(RayTarget):
    """The Ray target on a cluster ferry manages (see the module docstring)."""

    kind = KIND

    def __init__(self, name: str, config: Mapping[str, Any], workspace: WorkspaceServices) -> None:
        self.managed = ManagedSettings.from_config(config)
        shape = self.managed.shape
        ray_config = {"address": "auto", "num_cpus": shape.cpus, "num_gpus": float(shape.gpus)}
        super().__init__(name, ray_config, workspace)
        self.config = self.managed.to_dict()

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        return ManagedSettings.from_config(config).to_dict()

    @classmethod
    def status(
        cls, name: str, config: Mapping[str, Any], workspace: WorkspaceServices
    ) -> dict[str, Any]:
        settings = ManagedSettings.from_config(config)
        state = read_state(cluster_folder(workspace.path, name))
        base: dict[str, Any] = {
            "name": name,
            "kind": KIND,
            "shape": settings.shape.describe(),
            "nodes_min_max": f"{settings.min_nodes}..{settings.max_nodes}",
            "idle_seconds_before_scaledown": settings.idle_seconds_before_scaledown,
            "where": "ssh pool: " + ", ".join(settings.pool.hosts) if settings.pool else "here",
        }
        if state is None or not is_running(state):
            return {**base, "head": "stopped (started again by the next run)"}
        report = node_report(state.address)
        return {
            **base,
            "head": f"running at {state.address}",
            "nodes": [
                f"{n.address} ({n.node_id}): {'running' if n.busy else 'idle'}, "
                f"{format_resources(n.total)}"
                for n in report.workers
            ],
            "starting": report.launching,
        }

    # prepare: the Ray target's, on whole nodes the autoscaler may still have to start ---------
    def prepare(self, job: JobSpec, ctx: PrepareContext) -> Prepared:
        self.check_job(self.name, job)
        self._job, self._ctx = job, ctx
        self._writer = StreamWriter(job.paths)
        self._plan = job.distributed
        wanted = self._plan.node_count if self._plan else 1
        if wanted > self.managed.max_nodes:
            raise self._error(
                TargetRefused,
                f"the run asks for {wanted} nodes and the cluster has at most "
                f"{self.managed.max_nodes}; raise it with AmlCompute(ws, {self.name!r})"
                f".update(max_nodes={wanted})",
            )
        manifest, snapshot_id = self._manifest(job, ctx)
        self._state = ensure_running(self.workspace.path, self.name, self.managed, ctx.log)
        self.settings = replace(self.settings, address=self._state.address)
        ctx.log(f"ferry: connecting to cluster {self.name!r} at {self._state.address}")
        try:
            connect(self.settings, self._tick)
        except TargetUnavailable as exc:
            exc.run_id, exc.target = job.run_id, self.name
            raise
        bundle = self.managed.shape.resources()
        placement = Placement(
            [dict(bundle) for _ in range(wanted)], "STRICT_SPREAD" if wanted > 1 else "PACK"
        )
        return self._prepare_on_nodes(placement, manifest, snapshot_id, job, ctx)

    def _wait_for_placement(self, placement: Placement, ctx: PrepareContext) -> None:
        """Wait for the nodes, saying (the run shows Queued) how many the autoscaler starts."""
        ready = self._pg.ready()
        started = time.monotonic()
        said = ""
        while not ray.wait([ready], timeout=0.25)[0]:
            self._tick()
            if time.monotonic() - started < 1.0:
                continue
            alive = [n for n in nodes() if n.alive and n.total.get("CPU")]
            reason = (
                f"waiting for {len(placement.bundles)} node(s) of shape "
                f"{self.managed.shape.describe()}: {len(alive)} of at most "
                f"{self.managed.max_nodes} up; Ray's autoscaler starts nodes as runs need them"
            )
            if reason != said:
                ctx.waiting(reason)
                said = reason
        if said:
            ctx.resumed()
        waited = time.monotonic() - started
        if waited > 1.0:
            ctx.log(f"ferry: the cluster's nodes were ready after {waited:.1f} s")
