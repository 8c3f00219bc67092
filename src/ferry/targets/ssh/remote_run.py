"""One job on an SSH host, driven from an asyncio loop: prepare, launch, follow, stop, clean up.

The warm path costs three requests after the SSH handshake: the agent's hello, ``prepare`` (the
snapshot id, the runtime's and the environment's names: the host answers what it lacks and, when
it lacks nothing, has already copied the tree into the run folder) and ``launch`` (which also
starts streaming the run's files back). Only what the host lacks is sent: blobs by SFTP, the
runtime folder once per content hash (:mod:`.remote_files`, which also brings outputs back), the
environment built there once per spec hash. The connection itself is :mod:`.remote_link`.

On the host the job runs under ferry's watchdog (:mod:`ferry.agent.jobs`), which answers for
every process the job starts: a cancel, the time limit, the job's end and a supervisor that
stopped following (its lease expired) stop all of them.

Connection loss during a run: the job keeps running under its watchdog while this side reconnects
(backing off, for up to ``reconnect_seconds``, by default the lease) and resumes the stream where
it stopped; a note in the log says so. If it cannot, the run ends with :class:`~ferry.errors.
JobLost` saying what happened, and the watchdog stops the job when its lease expires.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry.agent import logcap
from ferry.envbuild import effective_environment
from ferry.errors import EnvironmentBuildError, FerryError, JobLost, TargetRefused
from ferry.snapshot import Manifest
from ferry.spec import EnvironmentSpec, JobSpec, PrepareContext, WorkspaceServices
from ferry.targets import datasets, distributed, mpi
from ferry.targets.base import Prepared, Started
from ferry.targets.container import HABIT_WITHOUT_ENGINE, without_docker
from ferry.targets.jobenv import job_request
from ferry.targets.ssh import remote_files, remote_mpi
from ferry.targets.ssh.remote_env import plan_environment, refusal
from ferry.targets.ssh.remote_link import RemoteLink
from ferry.targets.ssh.session import SessionLost
from ferry.targets.ssh.settings import SshSettings
from ferry.targets.ssh.sink import LocalSink
from ferry.targets.ssh.transfer import Uploaded

if TYPE_CHECKING:
    from ferry.targets.ssh.remote_docker import RemoteDocker

#: what a Docker run asks of the host's own Python: nothing (its image provides Python)
_PLAIN = EnvironmentSpec(name="docker", user_managed=True)


class RemoteRun(RemoteLink):
    """The state of one job on a host, kept across reconnections."""

    def __init__(
        self, name: str, settings: SshSettings, workspace: WorkspaceServices, job: JobSpec
    ) -> None:
        super().__init__(name, settings, workspace)
        self.job = job
        self.sink = LocalSink(job.paths, job.watched_dirs)
        self.sent = Uploaded()
        self.done = threading.Event()  # set on the job's exit, or when the run cannot go on
        self.exit: dict[str, Any] | None = None
        self.fatal: FerryError | None = None
        self._ctx: PrepareContext | None = None
        self._python = ""
        self._environment: dict[str, str] = {}
        self._prepend: dict[str, str] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._cancel_grace: float | None = None
        self._docker: RemoteDocker | None = None
        self.mpirun: mpi.OpenMpi | None = None  # an MPI job: the host's Open MPI launcher
        self.data_inputs: dict[str, str] = {}  # input name → what the job gets on the host
        self.data_outputs: dict[str, str] = {}  # output name → the folder it writes there
        self.data_paths: list[str] = []  # dataset folders outside the run folder, removed after

    # connection ------------------------------------------------------------------------------
    @property
    def run_dir(self) -> str:
        assert self.session is not None
        return f"{self.session.work_dir}/runs/{self.job.run_id}"

    def _on_event(self, header: dict[str, Any], payload: bytes) -> None:
        kind = header.get("t")
        if kind == "data":
            pos = header.get("pos")
            try:
                self.sink.write(
                    str(header["f"]), payload, bool(header.get("reset")), int(pos) if pos else None
                )
            except (OSError, FerryError) as exc:
                self.fatal = TargetRefused(
                    f"cannot keep the run's files on this machine: {exc}",
                    run_id=self.job.run_id,
                    target=self.name,
                )
                self.done.set()
        elif kind == "log" and self._ctx is not None:
            self._ctx.log(str(header.get("text", "")))
        elif kind == "exit":
            self.exit = header
            self.done.set()

    # the life of the run -----------------------------------------------------------------------
    async def prepare(
        self,
        ctx: PrepareContext,
        snapshot_id: str,
        files: int,
        runtime: Path,
        manifests: Mapping[str, Manifest] | None = None,
    ) -> Prepared:
        """Bring the snapshot, the datasets, the runtime and the environment to the host."""
        self._ctx = ctx
        env, notes = effective_environment(self.job.environment)
        for note in notes:
            ctx.log(f"ferry: {note}")
        problem = refusal(env)
        if problem:
            raise TargetRefused(problem, run_id=self.job.run_id, target=self.name)
        session = await self.connect()
        if remote_mpi.wants_mpirun(self):  # before anything is sent: the host must have it
            self.mpirun = await remote_mpi.check_host(self)
            ctx.log(f"ferry: {self.settings.where}: {self.mpirun.version} at {self.mpirun.path}")
        if env.docker.wanted and not env.docker.enabled:  # by habit: a container if it can
            try:
                await self.call("docker_check", engine=self.settings.docker_host or "")
            except TargetRefused:  # the host has no engine (the agent says so)
                where = f"on {self.settings.where}"
                ctx.log("ferry: " + HABIT_WITHOUT_ENGINE.format(where=where))
                env = without_docker(env)
        docker = env.docker.wanted
        plan = plan_environment(env if not docker else _PLAIN, session.hello, self.settings)
        ask = {"run": self.job.run_id, "snapshot": snapshot_id}
        copy_timeout = self.settings.command_timeout + files / 200
        reply = await self.call(
            "prepare", copy_timeout, **ask, runtime=runtime.name, env=plan.spec_hash
        )
        runtime_dir, env_facts = reply["runtime"], reply["env"]
        # the manifest first, then its blobs (again if any arrived corrupt)
        reply = await remote_files.send_missing(self, reply, "prepare", copy_timeout, "blobs", ask)
        where = self.settings.where
        ctx.log(
            f"ferry: {where}: snapshot of {reply['files']} files; sent {self.sent.files} "
            f"blob(s), {self.sent.bytes} bytes"
        )
        for warning in reply.get("warnings") or []:
            ctx.log(f"ferry: {warning}")
        await remote_files.place_datasets(self, ctx, manifests or {})
        runtime_dir = await remote_files.send_runtime(self, runtime, runtime_dir)
        self._prepend = {"PYTHONPATH": str(runtime_dir)}
        if docker:  # the image on the host's engine, built through the connection
            from ferry.targets.ssh.remote_docker import RemoteDocker

            self._docker = RemoteDocker(self)
            prepared = await self._docker.prepare(ctx)
            self._python, self._ctx = "docker", None
            return prepared
        self._environment = dict(plan.variables)
        self._python = plan.interpreter
        if plan.request is not None:
            short = f"{plan.spec_hash[:12] if plan.spec_hash else ''} on {where}"
            if env_facts is None:
                ctx.log(f"environment {env.name!r}: building {short}")
                try:
                    env_facts = await self.call(
                        "build_env", self.settings.build_timeout, **plan.request
                    )
                except TargetRefused as exc:
                    raise EnvironmentBuildError(f"environment {env.name!r}: {exc}") from None
            else:
                ctx.log(f"environment {env.name!r}: reusing {short}")
            self._python = env_facts["python"]
            self._environment["VIRTUAL_ENV"] = env_facts["folder"]
            self._prepend["PATH"] = f"{env_facts['folder']}/bin"
        self._ctx = None
        return Prepared(env_hash=plan.spec_hash, env_lock=(env_facts or {}).get("lock"))

    def data_variables(self) -> dict[str, str]:
        return datasets.variables(self.job, self.data_inputs, self.data_outputs)

    def data_argv(self, argv: list[str]) -> list[str]:
        return datasets.substitute(argv, self.job, self.data_inputs, self.data_outputs)

    async def collect_data_outputs(self, staging: Path) -> dict[str, Path]:
        """Bring the job's output folders back (``staging/<name>``) to be saved."""
        return await remote_files.collect_data_outputs(self, staging)

    async def launch(self) -> Started:
        from ferry.supervisor import kill_grace_seconds

        assert self.session is not None and self._python
        job = self.job
        request = job_request(
            job,
            run_dir=self.run_dir,
            workdir=f"{self.run_dir}/wd",
            runtime_path=self._prepend["PYTHONPATH"],
            environment=self._environment,
        )
        request["prepend"] = {**request["prepend"], **self._prepend}
        request["set"].update(self.data_variables())
        plan = job.distributed
        ranks: list[dict[str, Any]] = [{"rank": 0}]
        argv = self.data_argv(job.command.argv(self._python))
        port = int((await self.call("free_port"))["port"]) if plan is not None else None
        if self._docker is not None:
            request = self._docker.launch_request(self._prepend["PYTHONPATH"], port)
            argv, ranks = request.pop("argv"), request.pop("ranks")
        elif self.mpirun is not None:  # one process, the host's mpirun: it starts the ranks
            assert port is not None
            ranks = remote_mpi.plain_ranks(self, argv, port)
        elif plan is not None:  # one host: every rank here (check_job refused more nodes)
            assert port is not None
            ranks = [
                {
                    "rank": slot.rank,
                    "set": distributed.rank_environment(plan, slot, "127.0.0.1", port),
                }
                for slot in plan.slots()
            ]
        status = await self.call(
            "launch",
            run=job.run_id,
            argv=argv,
            **request,
            ranks=ranks,
            watch=list(job.watched_dirs),
            lease=self.settings.lease_seconds,
            grace=kill_grace_seconds(),
            log_max_bytes=logcap.max_bytes_from_env(),
        )
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._ping()), loop.create_task(self._watch())]
        # "host" stays the supervisor's (liveness checks its pid there); no job_pgid: the group
        # lives on the remote host, where its watchdog stops it
        count = plan.world_size if plan is not None else len(ranks)
        return Started(host=socket.gethostname(), remote_pid=int(status["pid"]), ranks=count)

    async def _ping(self) -> None:
        """Keep the lease fresh while this supervisor follows the run."""
        interval = min(1.0, self.settings.lease_seconds / 4)
        while not self.done.is_set():
            await asyncio.sleep(interval)
            if self.session is not None:
                self.session.notify("ping")

    async def _watch(self) -> None:
        while not self.done.is_set() and not self._closing:
            assert self.session is not None
            await self.session.closed.wait()
            if self.done.is_set() or self._closing:
                return
            await self._reconnect()

    async def _reconnect(self) -> None:
        lost = time.monotonic()
        budget = self.settings.reconnect_budget
        delay, last = 0.2, "no attempt"
        self._drop_connection()
        while time.monotonic() - lost < budget and not self._closing:
            try:
                await self.connect()
                away = time.monotonic() - lost
                self.sink.note(
                    f"ferry: the SSH connection to {self.settings.where} dropped; the supervisor "
                    f"reconnected after {away:.1f} s and follows the job again"
                )
                await self.call(
                    "follow",
                    run=self.job.run_id,
                    offsets=dict(self.sink.received),
                    watch=list(self.job.watched_dirs),
                )
                if self._cancel_grace is not None:
                    await self.call("kill", run=self.job.run_id, grace=self._cancel_grace)
                return
            except FerryError as exc:
                last = str(exc)
                self._drop_connection()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        self.fatal = JobLost(
            f"lost the SSH connection to {self.settings.where} during the run and could not "
            f"reconnect within {budget:.0f} s (last error: {last}); the job there is stopped "
            f"by its watchdog {self.settings.lease_seconds:.0f} s after its supervisor left",
            run_id=self.job.run_id,
            target=self.name,
        )
        self.done.set()

    async def cancel(self, grace: float) -> None:
        self._cancel_grace = grace
        try:
            await self.call("kill", run=self.job.run_id, grace=grace)
        except SessionLost:
            pass  # sent again as soon as the connection is back

    async def collect_outputs(self, dest: Path) -> None:
        await remote_files.collect_outputs(self, dest)

    async def close(self, keep: bool) -> None:
        """Stop following; remove the remote run folder (a job still running is stopped)."""
        self._closing = True
        for task in self._tasks:
            task.cancel()
        if self.session is not None and not self.session.closed.is_set():
            try:
                await self.call(
                    "cleanup", run=self.job.run_id, keep=keep, remove=list(self.data_paths)
                )
            except FerryError:
                pass
        conn = self.conn
        self._drop_connection()
        if conn is not None:
            try:
                await asyncio.wait_for(conn.wait_closed(), 5)
            except TimeoutError:
                pass
        self.sink.close()


def remote_result(run: RemoteRun) -> int | None:
    """The job's exit code once it has ended (None while it runs); raises what ended it
    otherwise: the connection lost for good, or the job lost on the host."""
    if run.exit is not None:
        if run.exit.get("lost"):
            raise JobLost(
                f"the job's watchdog on {run.settings.where} is gone without a result (the "
                "host rebooted, or its processes were killed from outside)",
                run_id=run.job.run_id,
                target=run.name,
            )
        code = run.exit.get("code")
        return int(code) if isinstance(code, int) else 1
    if run.fatal is not None:
        raise run.fatal
    return None
