"""The ``ray`` target: one run's ranks placed on a Ray cluster, followed from the supervisor.

prepare: connect, refuse what the cluster can never hold, reserve a placement group (one bundle
per node; the run's log says what it waits for), start one :class:`NodeAgent` actor per bundle,
send the runtime and the blobs each node lacks, materialise, resolve the environment there.
start: one process per rank (``MASTER_ADDR`` is node 0's address). wait/sync: pull the logs,
spool and ./logs back; when a node's rank fails, the other nodes are stopped and the failing
rank's error is repeated at the end of the main log. close: actors and the placement group go.

The actors are owned by the supervisor (the Ray driver): when it dies, Ray kills them, and each
node's guardian kills the ranks.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from ferry.environment import Environment
from ferry.errors import ConfigError, TargetError
from ferry.targets import distributed
from ferry.targets.base import JobSpec, Target
from ferry.targets.local import job_argv, keep_rank_logs
from ferry.targets.ray.agent import NodeAgent
from ferry.targets.ray.cluster import (
    Placement,
    RaySettings,
    placement_for,
    why_impossible,
    why_waiting,
)
from ferry.targets.ray.connect import cluster_status, connect, disconnect, nodes
from ferry.targets.ray.shipping import (
    check_environment,
    environment_request,
    node_kit,
    runtime_files,
    send_blobs,
    wait_for,
)
from ferry.targets.ray.streams import StreamWriter

_CALL_TIMEOUT = 120.0


class RayTarget(Target):
    """Runs a job's ranks as processes started by ferry's actors on a Ray cluster."""

    kind = "ray"

    def __init__(self, name: str, config: Mapping[str, Any], workspace: Any) -> None:
        super().__init__(name, config, workspace)
        self.settings = RaySettings.from_config(self.config)
        self._job: JobSpec | None = None
        self._plan: distributed.DistributedPlan | None = None
        self._pg: Any = None
        self._agents: list[Any] = []
        self._hellos: list[dict[str, Any]] = []
        self._pythons: list[str] = []
        self._runtime = ""
        self._ended: dict[int, dict[str, Any]] = {}
        self._code: int | None = None
        self._stopping = False
        self._stepped = False
        self._next_logs = 0.0
        self._next_status = 0.0
        self._writer: StreamWriter | None = None

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        return RaySettings.from_config(config).to_dict()

    @classmethod
    def status(cls, name: str, config: Mapping[str, Any], workspace: Any) -> dict[str, Any]:
        return cluster_status(name, RaySettings.from_config(config))

    @classmethod
    def check_definition(cls, name: str, definition: Mapping[str, Any]) -> None:
        """Refuse at submit what no Ray cluster can run: bad process counts, Docker, conda-only."""
        _plan(definition)
        check_environment(Environment.from_dict(definition.get("environment") or {}))

    # prepare -----------------------------------------------------------------------------------
    def prepare(self, job: JobSpec, log: Callable[[str], None]) -> dict[str, Any]:
        self._job = job
        self._writer = StreamWriter(job.run_dir)
        self._plan = _plan(job.definition)
        nodes_wanted = self._plan.node_count if self._plan else 1
        per_node = self._plan.processes_per_node if self._plan else 1
        manifest, snapshot_id = self._manifest(job)
        env = Environment.from_dict(job.definition.get("environment") or {})
        log(f"ferry: connecting to the Ray cluster at {self.settings.address}")
        connect(self.settings, self._tick)
        placement = placement_for(self.settings, nodes_wanted, per_node)
        reason = why_impossible(placement, [n.total for n in nodes() if n.alive])
        if reason:
            raise TargetError(reason)
        self._pg = placement_group(
            placement.bundles, strategy=placement.strategy, name=f"ferry:{job.run_id}"
        )
        self._wait_for_placement(placement, log)
        self._start_agents(placement, job)
        self._ship(manifest, snapshot_id, log)
        return self._resolve_environments(env, log)

    def _manifest(self, job: JobSpec) -> tuple[Any, str]:
        from ferry.snapshot import load_manifest

        snapshot_id = job.snapshot_id
        if snapshot_id is None:
            if job.source_dir is None:
                raise TargetError("the run has neither a snapshot nor a source folder")
            from ferry.snapshot import take_snapshot

            snapshot_id = take_snapshot(
                job.source_dir, self.workspace.blobs, self.workspace.cache_dir / "snapshots"
            ).snapshot_id
        return load_manifest(self.workspace.blobs, snapshot_id), snapshot_id

    def _tick(self) -> None:
        """While preparing (the supervisor's thread keeps the heartbeat): stop when canceled."""
        from ferry.status import RunStatus
        from ferry.supervisor import CANCEL_MARKER

        assert self._job is not None
        now = time.monotonic()
        canceled = (self._job.run_dir / CANCEL_MARKER).exists()
        if not canceled and now >= self._next_status:
            self._next_status = now + 1.0
            status = self.workspace.store.get_run(self._job.run_id).status
            canceled = status == RunStatus.CANCEL_REQUESTED
        if canceled:
            raise TargetError("the run was canceled before it started")

    def _wait_for_placement(self, placement: Placement, log: Callable[[str], None]) -> None:
        ready = self._pg.ready()
        started = time.monotonic()
        said, said_at = "", 0.0
        while not ray.wait([ready], timeout=0.25)[0]:
            self._tick()
            now = time.monotonic()
            if now - started < 1.0 or now - said_at < 5.0:
                continue
            alive = [n for n in nodes() if n.alive]
            impossible = why_impossible(placement, [n.total for n in alive])
            if impossible:
                raise TargetError(impossible)
            reason = why_waiting(placement, [n.free for n in alive])
            if reason != said:
                waiting = getattr(log, "waiting", None)  # the supervisor shows the run Queued
                if waiting is not None:
                    waiting(reason)
                else:
                    log(f"ferry: {reason}")
                said, said_at = reason, now
        resumed = getattr(log, "resumed", None)
        if said and resumed is not None:
            resumed()

    def _start_agents(self, placement: Placement, job: JobSpec) -> None:
        kit = node_kit()
        remote = ray.remote(NodeAgent)
        for index, bundle in enumerate(placement.bundles):
            custom = {k: v for k, v in bundle.items() if k not in ("CPU", "GPU", "memory")}
            options: dict[str, Any] = {
                "num_cpus": bundle.get("CPU", 0.0),
                "num_gpus": bundle.get("GPU", 0.0),
                "resources": custom,
                "max_restarts": 0,
                "scheduling_strategy": PlacementGroupSchedulingStrategy(
                    self._pg, placement_group_bundle_index=index
                ),
            }
            if bundle.get("memory"):
                options["memory"] = bundle["memory"]
            self._agents.append(
                remote.options(**options).remote(
                    self.settings.node_dir, job.run_id, index, self.settings.lease_seconds, kit
                )
            )
        refs = [a.hello.remote() for a in self._agents]
        self._hellos = [self._call(ref) for ref in refs]

    def _call(self, ref: Any, timeout: float = _CALL_TIMEOUT) -> Any:
        try:
            return wait_for(ref, self._tick, timeout)
        except ray.exceptions.RayError as exc:
            raise TargetError(f"a ferry agent on the Ray cluster failed: {exc}") from exc

    def _ship(self, manifest: Any, snapshot_id: str, log: Callable[[str], None]) -> None:
        from ferry.runtime.layout import build_runtime_path

        runtime = build_runtime_path(self.workspace.path / "runtime")
        self._runtime = runtime.name
        sizes = {entry.digest: entry.size for _, entry in manifest.files()}
        sizes[snapshot_id] = self.workspace.blobs.path(snapshot_id).stat().st_size
        shared: dict[str, Any] = {}  # one agent per node cache
        for agent, hello in zip(self._agents, self._hellos, strict=True):
            shared.setdefault(str(hello["cache_key"]), agent)
        sent = 0
        for agent in shared.values():
            if not self._call(agent.ensure_runtime.remote(runtime.name, None)):
                self._call(agent.ensure_runtime.remote(runtime.name, runtime_files(runtime)))
            sent += send_blobs(agent, sizes, self.workspace.blobs, manifest.algo, self._tick)
        if sent:
            log(f"ferry: sent {sent / 2**20:.1f} MiB of the snapshot to the cluster")
        refs = [a.materialize.remote(snapshot_id) for a in self._agents]
        results = [self._call(ref) for ref in refs]
        for agent, result in zip(self._agents, results, strict=True):
            if result.get("missing"):  # corrupt on the node: send those again, once
                again = {d: sizes[d] for d in result["missing"] if d in sizes}
                send_blobs(agent, again, self.workspace.blobs, manifest.algo, self._tick)
                result = self._call(agent.materialize.remote(snapshot_id))
                if result.get("missing"):
                    raise TargetError(f"the snapshot could not be copied to a node: {result}")
            for warning in result.get("warnings") or []:
                log(f"ferry: {warning}")

    def _resolve_environments(self, env: Environment, log: Callable[[str], None]) -> dict[str, Any]:
        """Every node resolves (or builds) the environment at once; build lines are logged."""
        from ferry.errors import EnvironmentBuildError

        digests = []
        for agent, hello in zip(self._agents, self._hellos, strict=True):
            request, digest = environment_request(env, hello, self.settings.uv)
            self._call(agent.start_env.remote(request))
            digests.append(digest)
        states: dict[int, dict[str, Any]] = {}
        while len(states) < len(self._agents):
            pending = [i for i in range(len(self._agents)) if i not in states]
            refs = {i: self._agents[i].env_status.remote() for i in pending}
            for index, ref in refs.items():
                state = self._call(ref)
                for line in state["lines"]:
                    log(f"ferry: [node {index}] {line}")
                if state["done"]:
                    states[index] = state
            if len(states) < len(self._agents):
                time.sleep(0.2)
        facts: dict[str, Any] = {}
        for index in range(len(self._agents)):
            state = states[index]
            if state["error"]:
                raise EnvironmentBuildError(
                    f"environment {env.name!r} on Ray node {self._hellos[index]['ip']}: "
                    f"{state['error']}"
                )
            self._pythons.append(str(state["result"]["python"]))
            if digests[index]:
                facts = {"env_hash": digests[index], "env_lock": state["result"].get("lock")}
        return facts

    # start -------------------------------------------------------------------------------------
    def start(self, job: JobSpec) -> dict[str, Any]:
        plan = self._plan
        slots = plan.slots() if plan else [distributed.RankSlot(0, 0, 0)]
        master = str(self._hellos[0]["ip"])
        port = int(self._call(self._agents[0].free_port.remote())) if plan else 0
        user = dict(
            Environment.from_dict(job.definition.get("environment") or {}).environment_variables
        )
        user.update(job.env_vars)
        threads = max(1, int(self.settings.num_cpus))
        refs = []
        for index, agent in enumerate(self._agents):
            hello = self._hellos[index]
            run_root = str(hello["run_root"])
            base = {
                "OMP_NUM_THREADS": str(threads),
                **user,
                "PYTHONUNBUFFERED": "1",
                "FERRY_RUN_ID": job.run_id,
                "FERRY_EXPERIMENT": job.experiment,
                "FERRY_RUN_DIR": run_root,
                "FERRY_SPOOL_DIR": f"{run_root}/spool",
                "FERRY_OUTPUT_DIR": f"{run_root}/wd/outputs",
                "AZUREML_OUTPUT_DIRECTORY": "./outputs",
            }
            if job.parent_run_id:
                base["FERRY_PARENT_RUN_ID"] = job.parent_run_id
            runtime = f"{hello['root']}/runtime/{self._runtime}"
            launches = [
                {
                    "rank": slot.rank,
                    "argv": job_argv(job.definition, self._pythons[index]),
                    "set": {
                        **base,
                        **(distributed.rank_environment(plan, slot, master, port) if plan else {}),
                    },
                    "prepend": {"PYTHONPATH": runtime},
                    "unset": [] if job.parent_run_id else ["FERRY_PARENT_RUN_ID"],
                    "log": distributed.rank_log_name(slot.rank),
                }
                for slot in slots
                if slot.node_rank == index
            ]
            refs.append(agent.start.remote(launches, _grace()))
        for ref in refs:
            self._call(ref)
        return {
            # the supervisor's own host: the job's process group is on the nodes, not here
            "host": socket.gethostname(),
            "ray_nodes": [h["ip"] for h in self._hellos],
            "ranks": len(slots),
        }

    # follow ------------------------------------------------------------------------------------
    def wait(self, timeout: float) -> int | None:
        if self._code is None:
            self._step(timeout)
            self._stepped = True
        return self._code

    def poll(self) -> int | None:
        return self.wait(0.0)

    def sync(self) -> None:
        if not self._stepped and self._code is None and self._agents:
            self._step(0.0)
        self._stepped = False

    def _step(self, timeout: float) -> None:
        assert self._writer is not None and self._job is not None
        now = time.monotonic()
        logs_dir = now >= self._next_logs
        if logs_dir:
            self._next_logs = now + 1.0
        everyone_ended = len(self._ended) == len(self._agents)
        refs = {
            i: a.step.remote(0.0 if i in self._ended else timeout, logs_dir or everyone_ended)
            for i, a in enumerate(self._agents)
        }
        more = False
        for index, ref in refs.items():
            try:
                result = ray.get(ref, timeout=timeout + _CALL_TIMEOUT)
            except (ray.exceptions.RayError, TimeoutError) as exc:
                self._node_lost(index, exc)
                continue
            self._writer.apply(result)
            more |= bool(result["more"])
            if result["ended"] is not None and index not in self._ended:
                self._ended[index] = result["ended"]
        failed = [e for e in self._ended.values() if e["failed_rank"] is not None]
        if failed and not self._stopping and len(self._ended) < len(self._agents):
            self._stopping = True
            for index, agent in enumerate(self._agents):
                if index not in self._ended:
                    agent.stop.remote(_grace())
        if everyone_ended and not more:
            self._code = self._conclude()

    def _node_lost(self, index: int, exc: BaseException) -> None:
        if index in self._ended:
            return
        assert self._job is not None
        hello = self._hellos[index] if index < len(self._hellos) else {}
        with open(self._job.log_path, "a", encoding="utf-8") as fh:
            fh.write(f"ferry: lost the ferry agent on Ray node {hello.get('ip', index)}: {exc}\n")
        self._ended[index] = {"code": -9, "failed_rank": None, "failed_at": time.time()}
        self._stopping = True
        for other, agent in enumerate(self._agents):
            if other not in self._ended:
                agent.stop.remote(_grace())

    def _conclude(self) -> int:
        assert self._job is not None
        ends = [self._ended[i] for i in range(len(self._agents))]
        failed = [e for e in ends if e["failed_rank"] is not None]
        if failed:
            first = min(failed, key=lambda e: e["failed_at"] or 0.0)
            ended = distributed.GroupExit(int(first["code"]), int(first["failed_rank"]))
            distributed.append_failure_note(
                str(self._job.log_path),
                ended,
                str(self._job.run_dir / distributed.rank_log_name(ended.failed_rank or 0)),
            )
            return ended.code
        lost = [e for e in ends if e["code"] != 0]
        return int(lost[0]["code"]) if lost else 0

    def cancel(self, grace_seconds: float) -> None:
        refs = [a.stop.remote(grace_seconds) for i, a in enumerate(self._agents)]
        for ref in refs:
            try:
                ray.get(ref, timeout=grace_seconds + 30)
            except (ray.exceptions.RayError, TimeoutError):
                pass

    # outputs and the end -----------------------------------------------------------------------
    def collect_outputs(self, dest: Path) -> None:
        assert self._job is not None
        keep_rank_logs(self.workspace, self._job.run_id, self._job.run_dir)
        written: set[str] = set()
        for agent in self._agents:  # node 0 first: its files win
            mine: set[str] = set()
            cursor: list[int] | None = [0, 0]
            while cursor is not None:
                try:
                    items, cursor = ray.get(agent.outputs.remote(cursor), timeout=_CALL_TIMEOUT)
                except (ray.exceptions.RayError, TimeoutError):
                    break
                for item in items:
                    rel = str(item["path"])
                    if rel in written:
                        continue
                    mine.add(rel)
                    path = dest / rel
                    path.parent.mkdir(parents=True, exist_ok=True)
                    if "link" in item:
                        path.unlink(missing_ok=True)
                        os.symlink(item["link"], path)
                        continue
                    with open(path, "r+b" if item["offset"] else "wb") as fh:
                        fh.seek(item["offset"])
                        fh.write(item["data"])
                    path.chmod(int(item["mode"]))
            written |= mine

    def watched_dirs(self) -> list[Path]:
        return [self._writer.logs_dir] if self._writer is not None else []

    def close(self) -> None:
        keep = bool(os.environ.get("FERRY_KEEP_WORKDIR"))
        refs = [a.cleanup.remote(keep) for a in self._agents]
        for ref in refs:
            try:
                ray.get(ref, timeout=15)
            except (ray.exceptions.RayError, TimeoutError):
                pass
        for agent in self._agents:
            try:
                ray.kill(agent)
            except (ray.exceptions.RayError, ValueError):
                pass
        if self._pg is not None:
            try:
                remove_placement_group(self._pg)
            except (ray.exceptions.RayError, ValueError):
                pass
        if ray.is_initialized():
            disconnect()


def _plan(definition: Mapping[str, Any]) -> distributed.DistributedPlan | None:
    plan = distributed.plan_from_definition(definition)
    node_count = int(definition.get("nodeCount") or 1)
    if plan is None and node_count > 1:
        raise ConfigError(
            f"node_count={node_count} needs a distributed_job_config (PyTorchConfiguration "
            "or MpiConfiguration) saying how to start the processes on each node"
        )
    return plan


def _grace() -> float:
    from ferry.supervisor import kill_grace_seconds

    return kill_grace_seconds()
