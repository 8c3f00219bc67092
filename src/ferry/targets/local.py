"""The local target: the job runs on this machine, in a materialised copy of its snapshot.

A Docker run (``env.docker.enabled``, ``DockerConfiguration(use_docker=True)``) runs in the
environment's image, built once per specification hash, on the engine found as Docker's clients
find it: one container per rank, started and stopped as :mod:`ferry.targets.container` says.

A distributed run (``ScriptRunConfig(distributed_job_config=PyTorchConfiguration(...))``) starts
one process per rank on this machine (one node), each with its own log beside the main one. An
MPI run (``MpiConfiguration``) is one real ``mpirun`` starting the ranks
(:mod:`ferry.targets.mpi`); the NCCL backend is refused where no GPU is to be seen.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ferry import envbuild
from ferry.agent.environ import apply_request, without_ferry_secrets
from ferry.errors import ConfigError, TargetRefused
from ferry.ingest import move_outputs
from ferry.spec import DistributedPlan, JobSpec, PrepareContext, WorkspaceServices
from ferry.targets import container, distributed, mpi
from ferry.targets.base import Prepared, Started, Target
from ferry.targets.jobenv import job_request
from ferry.targets.watched import JobProcess, WatchedJob


class LocalTarget(Target):
    """Runs jobs as child processes of the run's supervisor on this machine."""

    kind = "local"

    def __init__(self, name: str, config: Mapping[str, Any], workspace: WorkspaceServices) -> None:
        super().__init__(name, config, workspace)
        self._job: WatchedJob | None = None
        self._workdir: Path | None = None
        self._python: str | None = None
        self._env_vars: dict[str, str] = {}
        self._owns_workdir = False
        self._plan: DistributedPlan | None = None
        self._watched: tuple[str, ...] = ("logs",)
        self._run_dir: Path | None = None
        self._run_id = ""
        self._noted = False
        self._mpirun: mpi.OpenMpi | None = None
        self._image: str | None = None  # a Docker run: its image, on the engine below
        self._engine = ""
        self._spec: JobSpec | None = None
        self._inputs: dict[str, str] = {}  # input name → what the job gets (a folder or file)
        self._outputs: dict[str, str] = {}  # output name → the folder the job writes
        self._data_env: dict[str, str] = {}
        self._made: list[str] = []  # dataset folders this run made (removed after it)

    @classmethod
    def check_job(cls, name: str, job: JobSpec) -> None:
        """A user-managed interpreter must exist here (a remote kind checks on its host); a
        distributed job must fit on one machine and find what it needs here (Open MPI's
        mpirun, GPUs for NCCL)."""
        if container.runs_in_container_here(job.environment):
            container.check_docker_job(name, cls.kind, job)
            _check_here(name, job)
            return
        _check_here(name, job)
        if job.environment.user_managed and job.environment.interpreter:
            envbuild.find_interpreter(job.environment.interpreter)

    def prepare(self, job: JobSpec, ctx: PrepareContext) -> Prepared:
        self._plan = _one_node(job)
        self._mpirun = _check_here(self.name, job)
        if job.snapshot_id:
            from ferry.snapshot import load_manifest, materialize

            self._workdir = job.paths.workdir
            manifest = load_manifest(self.workspace.blobs, job.snapshot_id)
            materialize(manifest, self.workspace.blobs, self._workdir)
            self._owns_workdir = True
        elif job.source_dir is not None:
            self._workdir = job.source_dir
        else:
            raise TargetRefused(
                "the run has neither a snapshot nor a source folder",
                run_id=job.run_id,
                target=self.name,
            )
        (self._workdir / "outputs").mkdir(exist_ok=True)
        for folder in job.watched_dirs:
            (self._workdir / folder).mkdir(parents=True, exist_ok=True)
        self._watched = job.watched_dirs
        self._spec = job
        self._prepare_data(job, ctx)
        environment = job.environment
        if environment.docker.wanted and not container.runs_in_container_here(environment):
            ctx.log("ferry: " + container.HABIT_WITHOUT_ENGINE.format(where="here"))
            environment = container.without_docker(environment)
        if environment.docker.wanted:
            from ferry.envbuild.docker_engine import engine_address

            self._engine = engine_address()
            image = container.prepare_image(
                job, self._engine, self.workspace.envs_dir, ctx.log, ctx.cancelled
            )
            self._image, self._python = image.tag, image.python
            self._env_vars = dict(job.environment.variables)
            return Prepared(env_hash=image.spec_hash, env_lock=image.lock)
        resolved = envbuild.resolve(environment, self.workspace.envs_dir, ctx.log)
        self._python = resolved.python
        self._env_vars = dict(resolved.variables)
        return Prepared(env_hash=resolved.spec_hash, env_lock=resolved.lock)

    def _prepare_data(self, job: JobSpec, ctx: PrepareContext) -> None:
        """Inputs as read-only views (or copies) here, empty output folders, and the catalog
        of registered models for ``Model.get_model_path`` in the job."""
        from ferry.targets import datasets

        assert self._workdir is not None
        where = {"run_dir": str(job.run_dir), "workdir": str(self._workdir)}
        if job.inputs:
            places = datasets.input_places(job, **where)
            self._inputs = datasets.deliver_here(
                self.workspace, job, places, ctx.log, made=self._made
            )
        self._outputs = datasets.output_places(job, **where)
        datasets.prepare_outputs_here(self._outputs, made=self._made)
        self._data_env = datasets.variables(job, self._inputs, self._outputs)
        self._data_env.update(datasets.model_catalog(self.workspace, job.run_dir))

    def _argv(self, job: JobSpec, argv: list[str]) -> list[str]:
        from ferry.targets import datasets

        return datasets.substitute(argv, job, self._inputs, self._outputs)

    def start(self, job: JobSpec) -> Started:
        from ferry.runtime.layout import build_runtime_path

        assert self._workdir is not None and self._python is not None
        runtime_path = build_runtime_path(self.workspace.path / "runtime")
        if self._image is not None:
            return self._start_containers(job, runtime_path)
        env = self.job_environment(job, runtime_path)
        return self._start_job(job, self._argv(job, job.command.argv(self._python)), env)

    def job_environment(self, job: JobSpec, runtime_path: Path) -> dict[str, str]:
        """The variables the job sees: this machine's (without ferry's secrets), the
        environment's, the run's and the runtime protocol's."""
        assert self._workdir is not None
        request = job_request(
            job,
            run_dir=str(job.run_dir),
            workdir=str(self._workdir),
            runtime_path=str(runtime_path),
            environment=self._env_vars,
        )
        request["set"].update(self._data_env)
        return apply_request(os.environ, request)

    def _start_job(
        self, job: JobSpec, argv: list[str], env: dict[str, str], first_line: str | None = None
    ) -> Started:
        """Start the job's processes under their watchdog: one, or one per rank."""
        if self._plan is None:
            launches = [JobProcess(0, argv, env, str(job.log_path), first_line)]
        elif self._mpirun is not None:
            launches = [mpi.launch_here(job, self._mpirun, argv, env, first_line)]
        else:
            host = "127.0.0.1"
            port = distributed.free_port(host)
            launches = [
                JobProcess(
                    slot.rank,
                    argv,
                    {**env, **distributed.rank_environment(self._plan, slot, host, port)},
                    str(job.run_dir / distributed.rank_log_name(slot.rank)),
                    first_line,
                )
                for slot in self._plan.slots()
            ]
        return self._start_launches(job, launches)

    def _start_launches(self, job: JobSpec, launches: list[JobProcess]) -> Started:
        from ferry.supervisor import job_umask, kill_grace_seconds

        assert self._workdir is not None
        job.log_path.parent.mkdir(parents=True, exist_ok=True)
        job.spool_dir.mkdir(parents=True, exist_ok=True)
        self._run_dir, self._run_id = job.run_dir, job.run_id
        self._job = WatchedJob.start(
            launches, self._workdir, job.run_dir, kill_grace_seconds(), umask=job_umask()
        )
        ranks = self._plan.world_size if self._plan is not None else 1
        return Started(host=os.uname().nodename, job_pgid=self._job.pgid, ranks=ranks)

    def _start_containers(self, job: JobSpec, runtime_path: Path) -> Started:
        """One container per rank, each its client under the job's watchdog."""
        assert self._workdir is not None and self._python is not None and self._image
        request = job_request(
            job,
            run_dir=str(job.run_dir),
            workdir=str(self._workdir),
            runtime_path=str(runtime_path),
            environment=self._env_vars,
        )
        variables = {**request["set"], **self._data_env, "PYTHONPATH": str(runtime_path)}
        gpus = container.wants_gpus(job) and bool(distributed.gpu_evidence())
        note = container.gpu_note(job, gpus)
        plan = container.ContainerPlan(
            image=self._image,
            engine=self._engine,
            command=self._argv(job, job.command.argv(self._python)),
            variables=variables,
            mounts=container.folders_to_mount(job.run_dir, self._workdir, runtime_path)
            + self._data_mounts(job),
            workdir=str(self._workdir),
            user=f"{os.getuid()}:{os.getgid()}",
            gpus=gpus,
            base_env=without_ferry_secrets(os.environ),
            docker=container.docker_client_path(),
        )
        if self._mpirun is not None:  # one mpirun here, one container per rank it starts
            box = container.mpi_launch(job, self._mpirun, plan)
            first = box.first_line + (note + "\n" if note else "")
            launch = JobProcess(0, box.argv, box.env, str(job.log_path), first, box.stop)
            return self._start_launches(job, [launch])
        slots: list[tuple[int, dict[str, str], str]] = [(0, {}, str(job.log_path))]
        if self._plan is not None:
            host, port = "127.0.0.1", distributed.free_port("127.0.0.1")
            slots = [
                (
                    slot.rank,
                    distributed.rank_environment(self._plan, slot, host, port),
                    str(job.run_dir / distributed.rank_log_name(slot.rank)),
                )
                for slot in self._plan.slots()
            ]
        launches = []
        for rank, extra, log_path in slots:
            one = container.rank_launch(job, plan, rank, extra)
            launches.append(JobProcess(rank, one.argv, one.env, log_path, note, one.stop))
        return self._start_launches(job, launches)

    def _data_mounts(self, job: JobSpec) -> list[tuple[str, bool]]:
        """What a container needs for the job's datasets: the blob store the input views link
        into (read-only), and folders given outside the run's folder."""
        if not job.inputs and not job.outputs:
            return []
        mounts = [(str(self.workspace.blobs.root), True)]
        views = self.workspace.cache_dir / "views"  # the shared views the inputs link to
        if views.is_dir():
            mounts.append((str(views), True))
        for folder in [*self._inputs.values(), *self._outputs.values()]:
            path = Path(folder)
            if not path.resolve().is_relative_to(job.run_dir.resolve()):
                mounts.append((str(path if path.is_dir() else path.parent), False))
        return mounts

    def _ended(self, code: int | None) -> int | None:
        if code is None or self._job is None:
            return code
        result = self._job.result()
        if self._plan is not None and not self._noted and result.get("reason") == "exit":
            self._noted = True
            assert self._run_dir is not None
            ended = self._group_exit(code, result)
            if ended is not None:
                distributed.append_failure_note(
                    str(self._run_dir / distributed.rank_log_name(0)),
                    ended,
                    str(self._run_dir / distributed.rank_log_name(ended.failed_rank or 0)),
                )
                code = ended.code
        if result.get("error"):
            self.note(f"ferry: {result['error']}")
        return code

    def _group_exit(self, code: int, result: dict[str, Any]) -> distributed.GroupExit | None:
        """The rank that failed first: mpirun's report for an MPI job (the watchdog saw one
        process), else the watchdog's own reckoning over the ranks it started."""
        assert self._run_dir is not None
        if self._mpirun is not None:
            assert self._plan is not None
            logs = (self._run_dir / distributed.rank_log_name(0)).parent
            return mpi.group_exit(code, logs, self._plan.world_size)
        failed = result.get("failed_rank")
        if not isinstance(failed, int):
            return None
        codes = {int(k): v for k, v in (result.get("codes") or {}).items()}
        return distributed.GroupExit(code, failed, codes, result.get("failed_at"))

    def poll(self) -> int | None:
        assert self._job is not None
        return self._ended(self._job.poll())

    def wait(self, timeout: float) -> int | None:
        assert self._job is not None
        return self._ended(self._job.wait(timeout))

    def cancel(self, grace_seconds: float) -> None:
        if self._job is not None:
            self._job.cancel(grace_seconds)

    def note(self, text: str) -> bool:
        """While the job runs, its watchdog writes ferry's own lines into the log."""
        return self._job is not None and self._job.poll() is None and self._job.note(text)

    def collect_outputs(self, dest: Path) -> None:
        if self._run_dir is not None:
            keep_rank_logs(self.workspace, self._run_id, self._run_dir)
        if self._workdir is None:
            return
        outputs = self._workdir / "outputs"
        if outputs.is_dir() and any(outputs.iterdir()):
            if self._owns_workdir:
                move_outputs(outputs, dest)
            else:
                shutil.copytree(outputs, dest, symlinks=True, dirs_exist_ok=True)
        if self._spec is not None:
            from ferry.targets import datasets

            datasets.finish(
                self.workspace,
                self._spec,
                outputs_dir=dest,
                staged={name: Path(folder) for name, folder in self._outputs.items()},
                succeeded=self._job is not None and self._job.poll() == 0,
                log=self._log_line,
            )

    def _log_line(self, text: str) -> None:
        """A line of ferry's own in the run's log, after the job (its watchdog is gone)."""
        if self.note(text) or self._spec is None:
            return
        with open(self._spec.log_path, "a", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(text.rstrip("\n") + "\n")

    def watched_dirs(self) -> dict[str, Path]:
        if self._workdir is None:
            return {}
        return {name: self._workdir / name for name in self._watched}

    def close(self) -> None:
        if self._spec is not None and not os.environ.get("FERRY_KEEP_WORKDIR"):
            from ferry.targets import datasets

            datasets.remove_places(self._made, self._spec.run_dir)
        if (
            self._owns_workdir
            and self._workdir is not None
            and not os.environ.get("FERRY_KEEP_WORKDIR")
        ):
            shutil.rmtree(self._workdir, ignore_errors=True)


def _one_node(job: JobSpec) -> DistributedPlan | None:
    plan = job.distributed
    if plan is not None and plan.node_count > 1:
        raise ConfigError(
            f"the local target is one machine, so node_count={plan.node_count} cannot run "
            "here; use node_count=1 with several processes (process_count or "
            "process_count_per_node), or a multi-node target such as ray"
        )
    return plan


def _check_here(name: str, job: JobSpec) -> mpi.OpenMpi | None:
    """What a distributed job needs from this machine: Open MPI's mpirun for the MPI form
    (returned), GPUs for the NCCL backend."""
    plan = _one_node(job)
    seen = {**os.environ, **job.environment.variables, **job.env_vars}
    distributed.check_backend_here(plan, seen)
    return mpi.find_open_mpi(name, job.run_id) if plan is not None and plan.kind == "mpi" else None


def keep_rank_logs(workspace: WorkspaceServices, run_id: str, run_dir: Path) -> None:
    """Record the logs of ranks other than 0 as the run's artifacts (rank 0's is the main log)."""
    from ferry.tracking import ArtifactRecord

    records = [
        ArtifactRecord(
            run_id,
            f"user_logs/{path.name}",
            str(path.relative_to(workspace.path)),
            path.stat().st_size,
        )
        for path in sorted((run_dir / "user_logs").glob("std_log_rank_*.txt"))
    ]
    if records:
        workspace.store.add_artifacts(records)
