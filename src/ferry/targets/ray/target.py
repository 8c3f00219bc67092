"""The ``ray`` target: one run's ranks placed on a Ray cluster, followed from the supervisor.

prepare: connect, refuse what the cluster can never hold, reserve a placement group (one bundle
per node; while it waits the run shows Queued with what it waits for), start one
:class:`~.agent.NodeAgent` actor per bundle, send the runtime, the watchdog's files and the blobs
each node lacks, materialise, resolve the environment there. start: one process per rank under
each node's watchdog (``MASTER_ADDR`` is node 0's address). wait/sync: pull the logs, spool and
watched folders back (:mod:`.follow`); when a node's rank fails, the other nodes are stopped and
the failing rank's error is repeated at the end of the main log. close: actors and the placement group go.

The actors are owned by the supervisor (the Ray driver): when it dies, Ray kills them, and each
node's watchdog — its control pipe closed — stops every process of the ranks. Errors carry the
run and the target: a cluster that cannot be reached is :class:`~ferry.errors.TargetUnavailable`,
a run it can never hold (or a node that refuses it) :class:`~ferry.errors.TargetRefused`, a node
lost during the run :class:`~ferry.errors.JobLost`.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from ferry.agent import logcap
from ferry.agent.bundle import bundle
from ferry.envbuild import effective_environment
from ferry.errors import (
    ConfigError,
    EnvironmentBuildError,
    JobLost,
    TargetError,
    TargetRefused,
    TargetUnavailable,
)
from ferry.spec import DistributedPlan, JobSpec, PrepareContext, RankSlot, WorkspaceServices
from ferry.targets import datasets, distributed
from ferry.targets.base import Prepared, Started, Target
from ferry.targets.jobenv import job_request
from ferry.targets.ray.agent import NodeAgent
from ferry.targets.ray.cluster import (
    Placement,
    RaySettings,
    placement_for,
    why_impossible,
    why_waiting,
)
from ferry.targets.ray.connect import cluster_status, connect, disconnect, nodes
from ferry.targets.ray.follow import CALL_TIMEOUT, NodesFollower
from ferry.targets.ray.shipping import (
    environment_refusal,
    environment_request,
    register_node_code,
    runtime_files,
    send_blobs,
    wait_for,
)
from ferry.targets.ray.streams import StreamWriter, receive_outputs


class RayTarget(Target):
    """Runs a job's ranks as processes started by ferry's actors on a Ray cluster."""

    kind = "ray"

    def __init__(self, name: str, config: Mapping[str, Any], workspace: WorkspaceServices) -> None:
        super().__init__(name, config, workspace)
        self.settings = RaySettings.from_config(self.config)
        self._job: JobSpec | None = None
        self._ctx: PrepareContext | None = None
        self._plan: DistributedPlan | None = None
        self._pg: Any = None
        self._agents: list[Any] = []
        self._hellos: list[dict[str, Any]] = []
        self._envs: list[dict[str, Any]] = []
        self._runtime = ""
        self._stepped = False
        self._writer: StreamWriter | None = None
        self._follower: NodesFollower | None = None
        self._data_inputs: list[dict[str, str]] = []  # per node: input name → the job's path
        self._data_outputs: list[dict[str, str]] = []  # per node: output name → its folder
        self._data_paths: list[list[str]] = []  # per node: dataset folders outside the run's

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        return RaySettings.from_config(config).to_dict()

    @classmethod
    def status(
        cls, name: str, config: Mapping[str, Any], workspace: WorkspaceServices
    ) -> dict[str, Any]:
        return cluster_status(name, RaySettings.from_config(config))

    @classmethod
    def check_job(cls, name: str, job: JobSpec) -> None:
        """Refuse at submit what no Ray cluster can run: several nodes without a distributed
        configuration (ConfigError: the run's configuration is incomplete), Docker, conda-only
        packages, MPI jobs (TargetRefused: no node provides them)."""
        from ferry.targets import mpi

        mpi.refuse_where_mpirun_is_not_started(name, cls.kind, job)
        if job.distributed is None and job.node_count > 1:
            raise ConfigError(
                f"node_count={job.node_count} needs a distributed_job_config "
                "(PyTorchConfiguration or MpiConfiguration) saying how to start the processes "
                "on each node"
            )
        problem = environment_refusal(effective_environment(job.environment)[0])
        if problem:
            raise TargetRefused(
                f"compute target {name!r}: {problem}", run_id=job.run_id, target=name
            )

    def _job_id(self) -> str | None:
        return self._job.run_id if self._job is not None else None

    def _error(
        self, kind: type[TargetUnavailable | TargetRefused | JobLost], message: str
    ) -> TargetError:
        """An error of ``kind`` naming this run and this target."""
        return kind(message, run_id=self._job_id(), target=self.name)

    # prepare -----------------------------------------------------------------------------------
    def prepare(self, job: JobSpec, ctx: PrepareContext) -> Prepared:
        self.check_job(self.name, job)
        self._job, self._ctx = job, ctx
        self._writer = StreamWriter(job.paths)
        self._plan = job.distributed
        nodes_wanted = self._plan.node_count if self._plan else 1
        per_node = self._plan.processes_per_node if self._plan else 1
        manifest, snapshot_id = self._manifest(job, ctx)
        ctx.log(f"ferry: connecting to the Ray cluster at {self.settings.address}")
        try:
            connect(self.settings, self._tick)
        except TargetUnavailable as exc:
            exc.run_id, exc.target = job.run_id, self.name
            raise
        placement = placement_for(self.settings, nodes_wanted, per_node)
        reason = why_impossible(placement, [n.total for n in nodes() if n.alive])
        if reason:
            raise self._error(TargetRefused, reason)
        return self._prepare_on_nodes(placement, manifest, snapshot_id, job, ctx)

    def _prepare_on_nodes(
        self, placement: Placement, manifest: Any, snapshot_id: str, job: JobSpec,
        ctx: PrepareContext,
    ) -> Prepared:  # fmt: skip
        """Once connected: reserve the nodes, start an agent on each and bring them the
        snapshot, the input datasets and the environments (shared with the managed target)."""
        self._pg = placement_group(
            placement.bundles, strategy=placement.strategy, name=f"ferry:{job.run_id}"
        )
        self._wait_for_placement(placement, ctx)
        self._start_agents(placement, job)
        self._ship(manifest, snapshot_id, job, ctx)
        self._ship_datasets(job, ctx)
        return self._resolve_environments(job, ctx)

    def _manifest(self, job: JobSpec, ctx: PrepareContext) -> tuple[Any, str]:
        """The run's snapshot, or (``history.snapshot_project=False``) one taken now of its
        source folder: the nodes need the files either way."""
        from ferry.snapshot import load_manifest, take_snapshot

        snapshot_id = job.snapshot_id
        if snapshot_id is None:
            if job.source_dir is None:
                raise self._error(
                    TargetRefused, "the run has neither a snapshot nor a source folder"
                )
            ctx.log(
                "ferry: history.snapshot_project is False: the source folder is sent to the "
                "cluster as it is now, and the run keeps no snapshot of it"
            )
            snapshot_id = take_snapshot(
                job.source_dir,
                self.workspace.blobs,
                self.workspace.cache_dir / "snapshots",
                exclude=[self.workspace.path],
            ).snapshot_id
        return load_manifest(self.workspace.blobs, snapshot_id), snapshot_id

    def _tick(self) -> None:
        """While preparing: stop when the run is canceled (or ended from outside)."""
        if self._ctx is not None and self._ctx.cancelled():
            raise TargetError("the run was canceled before it started")

    def _wait_for_placement(self, placement: Placement, ctx: PrepareContext) -> None:
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
                raise self._error(TargetRefused, impossible)
            reason = why_waiting(placement, [n.free for n in alive])
            if reason != said:
                ctx.waiting(reason)  # the supervisor shows the run Queued with the reason
                said, said_at = reason, now
        if said:
            ctx.resumed()

    def _start_agents(self, placement: Placement, job: JobSpec) -> None:
        register_node_code()
        remote = ray.remote(NodeAgent)
        for index, bundle_ in enumerate(placement.bundles):
            custom = {k: v for k, v in bundle_.items() if k not in ("CPU", "GPU", "memory")}
            options: dict[str, Any] = {
                "num_cpus": bundle_.get("CPU", 0.0),
                "num_gpus": bundle_.get("GPU", 0.0),
                "resources": custom,
                "max_restarts": 0,
                "scheduling_strategy": PlacementGroupSchedulingStrategy(
                    self._pg, placement_group_bundle_index=index
                ),
            }
            if bundle_.get("memory"):
                options["memory"] = bundle_["memory"]
            self._agents.append(
                remote.options(**options).remote(
                    self.settings.node_dir, job.run_id, index, self.settings.lease_seconds
                )
            )
        refs = [a.hello.remote() for a in self._agents]
        self._hellos = [self._call(ref) for ref in refs]

    def _call(self, ref: Any, timeout: float = CALL_TIMEOUT) -> Any:
        """A node agent's answer; its failure as a ferry error naming the run and target."""
        try:
            return wait_for(ref, self._tick, timeout)
        except ray.exceptions.RayActorError as exc:
            raise self._error(JobLost, f"a ferry agent on the Ray cluster died: {exc}") from exc
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None) or exc
            raise self._error(TargetRefused, f"a Ray node refused: {cause}") from None
        except ray.exceptions.RayError as exc:
            raise self._error(TargetUnavailable, f"the Ray cluster failed: {exc}") from exc
        except TargetUnavailable as exc:
            exc.run_id, exc.target = exc.run_id or self._job_id(), self.name
            raise

    def _ship(self, manifest: Any, snapshot_id: str, job: JobSpec, ctx: PrepareContext) -> None:
        from ferry.runtime.layout import build_runtime_path

        runtime = build_runtime_path(self.workspace.path / "runtime")
        self._runtime = runtime.name
        agent_name, agent_files = bundle()
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
        for agent in self._agents:  # each actor remembers where the watchdog is
            if not self._call(agent.ensure_agent.remote(agent_name, None)):
                self._call(agent.ensure_agent.remote(agent_name, agent_files))
        if sent:
            ctx.log(f"ferry: sent {sent / 2**20:.1f} MiB of the snapshot to the cluster")
        watched = list(job.watched_dirs)
        refs = [a.materialize.remote(snapshot_id, watched) for a in self._agents]
        results = [self._call(ref) for ref in refs]
        for agent, result in zip(self._agents, results, strict=True):
            if result.get("missing"):  # corrupt on the node: send those again, once
                again = {d: sizes[d] for d in result["missing"] if d in sizes}
                send_blobs(agent, again, self.workspace.blobs, manifest.algo, self._tick)
                result = self._call(agent.materialize.remote(snapshot_id, watched))
                if result.get("missing"):
                    raise self._error(
                        TargetRefused, f"the snapshot could not be copied to a node: {result}"
                    )
            for warning in result.get("warnings") or []:
                ctx.log(f"ferry: {warning}")

    def _ship_datasets(self, job: JobSpec, ctx: PrepareContext) -> None:
        """The job's input datasets on every node — only the blobs a node's cache lacks are
        sent, and each node keeps one read-only copy per version — and its output folders."""
        count = len(self._agents)
        self._data_inputs = [{} for _ in range(count)]
        self._data_outputs = [{} for _ in range(count)]
        self._data_paths = [[] for _ in range(count)]
        if not job.inputs and not job.outputs:
            return
        blobs = self.workspace.blobs
        manifests = datasets.local_manifests(self.workspace, job, ctx.log)
        sizes: dict[str, int] = {}
        for spec in job.inputs:
            sizes.update({e.digest: e.size for _, e in manifests[spec.name].files()})
            sizes[spec.manifest_id] = blobs.path(spec.manifest_id).stat().st_size
        shared: dict[str, Any] = {}
        for agent, hello in zip(self._agents, self._hellos, strict=True):
            shared.setdefault(str(hello["cache_key"]), agent)
        sent = sum(send_blobs(a, sizes, blobs, blobs.algo, self._tick) for a in shared.values())
        first: dict[str, str] = {}
        for index, (agent, hello) in enumerate(zip(self._agents, self._hellos, strict=True)):
            run_root = str(hello["run_root"])
            where = {"run_dir": run_root, "workdir": f"{run_root}/wd"}
            places = datasets.input_places(job, **where)
            first = first or places
            for spec in job.inputs:
                own = spec.mechanism == "download" or spec.path_on_compute is not None
                dest = places[spec.name] if own else None
                result = self._call(agent.dataset.remote(spec.manifest_id, spec.mechanism, dest))
                if result.get("missing"):  # corrupt on the node: send those again, once
                    again = {d: sizes[d] for d in result["missing"] if d in sizes}
                    send_blobs(agent, again, blobs, blobs.algo, self._tick)
                    result = self._call(
                        agent.dataset.remote(spec.manifest_id, spec.mechanism, dest)
                    )
                    if result.get("missing"):
                        raise self._error(
                            TargetRefused, f"dataset {spec.label} could not be copied to a node"
                        )
                self._data_inputs[index][spec.name] = datasets.job_path(spec, str(result["path"]))
                if spec.path_on_compute is not None:
                    self._data_paths[index].append(places[spec.name])
            outputs = datasets.output_places(job, **where)
            self._call(agent.mkdirs.remote(list(outputs.values())))
            self._data_outputs[index] = outputs
            self._data_paths[index] += [p for p in outputs.values() if not p.startswith(run_root)]
        ctx.log(
            f"ferry: {len(job.inputs)} input dataset(s) on {count} node(s); sent "
            f"{sent / 2**20:.1f} MiB of them to the cluster"
        )
        if job.inputs:
            datasets.record_inputs(self.workspace, job, first)

    def _resolve_environments(self, job: JobSpec, ctx: PrepareContext) -> Prepared:
        """Every node resolves (or builds) the environment at once; build lines are logged."""
        env, notes = effective_environment(job.environment)
        for note in notes:
            ctx.log(f"ferry: {note}")
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
                    ctx.log(f"ferry: [node {index}] {line}")
                if state["done"]:
                    states[index] = state
            if len(states) < len(self._agents):
                self._tick()
                time.sleep(0.2)
        prepared = Prepared()
        for index in range(len(self._agents)):
            state = states[index]
            if state["error"]:
                raise EnvironmentBuildError(
                    f"environment {env.name!r} on Ray node {self._hellos[index]['ip']}: "
                    f"{state['error']}"
                )
            self._envs.append(dict(state["result"]))
            if digests[index]:
                prepared = Prepared(env_hash=digests[index], env_lock=state["result"].get("lock"))
        self._ctx = None
        return prepared

    # start -------------------------------------------------------------------------------------
    def start(self, job: JobSpec) -> Started:
        from ferry.supervisor import kill_grace_seconds

        plan = self._plan
        slots = plan.slots() if plan else [RankSlot(0, 0, 0)]
        master = str(self._hellos[0]["ip"])
        port = int(self._call(self._agents[0].free_port.remote())) if plan else 0
        threads = str(max(1, int(self.settings.num_cpus)))
        refs = []
        for index, agent in enumerate(self._agents):
            hello, env = self._hellos[index], self._envs[index]
            run_root = str(hello["run_root"])
            environment = {"OMP_NUM_THREADS": threads, **job.environment.variables}
            if env.get("folder"):  # a built environment
                environment["VIRTUAL_ENV"] = str(env["folder"])
            request = job_request(
                job,
                run_dir=run_root,
                workdir=f"{run_root}/wd",
                runtime_path=f"{hello['root']}/runtime/{self._runtime}",
                environment=environment,
            )
            if env.get("folder"):
                request["prepend"] = {**request["prepend"], "PATH": f"{env['folder']}/bin"}
            inputs, outputs = self._data_inputs[index], self._data_outputs[index]
            request["set"].update(datasets.variables(job, inputs, outputs))
            argv = datasets.substitute(job.command.argv(str(env["python"])), job, inputs, outputs)
            launches = [
                {
                    **request,
                    "set": {
                        **request["set"],
                        **(distributed.rank_environment(plan, slot, master, port) if plan else {}),
                    },
                    "rank": slot.rank,
                    "argv": argv,
                    "log": distributed.rank_log_name(slot.rank),
                }
                for slot in slots
                if slot.node_rank == index
            ]
            refs.append(
                agent.start.remote(launches, kill_grace_seconds(), logcap.max_bytes_from_env())
            )
        for ref in refs:
            self._call(ref)
        assert self._writer is not None
        self._follower = NodesFollower(
            self._agents, self._hellos, self._writer, job.paths, job.watched_dirs,
            kill_grace_seconds(),
        )  # fmt: skip
        # the supervisor's own host: the job's process groups are on the nodes, not here
        return Started(host=socket.gethostname(), ranks=len(slots))

    # follow ------------------------------------------------------------------------------------
    def wait(self, timeout: float) -> int | None:
        follower = self._following()
        if follower.code is None:
            follower.step(timeout)
            self._stepped = True
        if follower.code is not None and follower.lost:
            raise self._error(JobLost, "; ".join(follower.lost))
        return follower.code

    def poll(self) -> int | None:
        return self.wait(0.0)

    def sync(self) -> None:
        follower = self._following()
        if not self._stepped and follower.code is None:
            follower.step(0.0)
        self._stepped = False

    def _following(self) -> NodesFollower:
        if self._follower is None:
            raise TargetError("the ray target's job was not started")
        return self._follower

    def note(self, text: str) -> bool:
        """The local log has one writer, the stream's: ferry's own lines go through it."""
        return self._writer is not None and self._writer.note(text)

    def cancel(self, grace_seconds: float) -> None:
        """Every node's watchdog stops its ranks; the run ends when every node says so."""
        if self._follower is not None:
            self._follower.stop(grace_seconds)

    # outputs and the end -----------------------------------------------------------------------
    def collect_outputs(self, dest: Path) -> None:
        from ferry.targets.local import keep_rank_logs

        assert self._job is not None
        job = self._job
        keep_rank_logs(self.workspace, job.run_id, job.run_dir)
        receive_outputs(self._agents, dest, CALL_TIMEOUT)
        succeeded = self._follower is not None and self._follower.code == 0
        staged = {}
        if succeeded:
            for spec in job.outputs:
                local = job.run_dir / "data_outputs" / spec.name
                folders = [outs[spec.name] for outs in self._data_outputs]
                receive_outputs(self._agents, local, CALL_TIMEOUT, folders)
                staged[spec.name] = local
        datasets.finish(
            self.workspace, job, outputs_dir=dest, staged=staged, succeeded=succeeded,
            log=self._log_line,
        )  # fmt: skip

    def _log_line(self, text: str) -> None:
        if not self.note(text) and self._job is not None:
            with open(self._job.log_path, "a", encoding="utf-8", errors="backslashreplace") as fh:
                fh.write(text.rstrip("\n") + "\n")

    def watched_dirs(self) -> dict[str, Path]:
        if self._writer is None or self._job is None:
            return {}
        return {name: self._writer.workdir / name for name in self._job.watched_dirs}

    def close(self) -> None:
        keep = bool(os.environ.get("FERRY_KEEP_WORKDIR"))
        refs = [
            a.cleanup.remote(keep, self._data_paths[i] if i < len(self._data_paths) else [])
            for i, a in enumerate(self._agents)
        ]
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
        if self._writer is not None:
            self._writer.close()
            if not keep:  # the watched folders' copies (their artifacts are kept)
                shutil.rmtree(self._writer.workdir.parent, ignore_errors=True)
        if ray.is_initialized():
            disconnect()
