"""One job on an SSH host, driven from an asyncio loop: prepare, launch, follow, stop, clean up.

The warm path costs three requests after the SSH handshake: the agent's hello, ``prepare`` (the
snapshot id, the runtime's and the environment's names: the host answers what it lacks and, when
it lacks nothing, has already copied the tree into the run folder) and ``launch`` (which also
starts streaming the run's files back). Only what the host lacks is sent: blobs by SFTP, the
runtime folder once per content hash, the environment built there once per spec hash.

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
import json
import shutil
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncssh

from ferry.agent import logcap
from ferry.envbuild import effective_environment
from ferry.errors import EnvironmentBuildError, FerryError, JobLost, TargetRefused
from ferry.snapshot import Manifest
from ferry.spec import EnvironmentSpec, JobSpec, PrepareContext, WorkspaceServices
from ferry.targets import datasets, distributed, mpi
from ferry.targets.base import Prepared, Started
from ferry.targets.container import HABIT_WITHOUT_ENGINE, without_docker
from ferry.targets.jobenv import job_request
from ferry.targets.ssh import remote_mpi
from ferry.targets.ssh.connect import open_connection
from ferry.targets.ssh.hostkeys import KNOWN_HOSTS_FILE
from ferry.targets.ssh.remote_env import plan_environment, refusal
from ferry.targets.ssh.session import AgentSession, SessionLost, agent_bundle
from ferry.targets.ssh.settings import SshSettings
from ferry.targets.ssh.sink import LocalSink
from ferry.targets.ssh.transfer import Uploaded, download_folder, upload_blobs, upload_folder

if TYPE_CHECKING:
    from ferry.targets.ssh.remote_docker import RemoteDocker

#: what a Docker run asks of the host's own Python: nothing (its image provides Python)
_PLAIN = EnvironmentSpec(name="docker", user_managed=True)


class RemoteRun:
    """The state of one job on a host, kept across reconnections."""

    def __init__(
        self, name: str, settings: SshSettings, workspace: WorkspaceServices, job: JobSpec
    ) -> None:
        self.name = name
        self.settings = settings
        self.workspace = workspace
        self.job = job
        self.sink = LocalSink(job.paths, job.watched_dirs)
        self.sent = Uploaded()
        self.done = threading.Event()  # set on the job's exit, or when the run cannot go on
        self.exit: dict[str, Any] | None = None
        self.fatal: FerryError | None = None
        self.conn: asyncssh.SSHClientConnection | None = None
        self.session: AgentSession | None = None
        self._sftp: asyncssh.SFTPClient | None = None
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
    async def connect(self) -> AgentSession:
        known_hosts = self.workspace.path / KNOWN_HOSTS_FILE
        conn = await open_connection(self.name, self.settings, known_hosts)
        hint = self._daemon_socket()
        try:
            session = await AgentSession.start(conn, self.settings, self._on_event, hint)
        except BaseException:
            conn.close()
            raise
        socket_path = session.hello.get("socket")
        if socket_path and socket_path != hint:
            self._remember_daemon(str(socket_path))
        self.conn, self.session, self._sftp = conn, session, None
        return session

    def _daemon_cache(self) -> tuple[Path, str]:
        s = self.settings
        key = f"{s.username}@{s.address}:{s.ssh_port}:{s.work_dir}:{agent_bundle()[0]}"
        return self.workspace.cache_dir / "ssh" / f"{self.name}.json", key

    def _daemon_socket(self) -> str | None:
        """Where the host's agent daemon listened last time (cached in the workspace)."""
        path, key = self._daemon_cache()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return str(data["socket"]) if data.get("key") == key and data.get("socket") else None

    def _remember_daemon(self, socket_path: str) -> None:
        from ferry.agent.files import write_json

        path, key = self._daemon_cache()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json(str(path), {"key": key, "socket": socket_path})
        except OSError:
            pass  # only an optimisation

    async def sftp(self) -> asyncssh.SFTPClient:
        if self._sftp is None:
            assert self.conn is not None
            self._sftp = await asyncio.wait_for(
                self.conn.start_sftp_client(), self.settings.command_timeout
            )
        return self._sftp

    async def call(self, op: str, timeout: float | None = None, **params: Any) -> dict[str, Any]:
        if self.session is None:
            raise SessionLost(f"not connected to {self.settings.where}")
        return await self.session.call(op, timeout or self.settings.command_timeout, **params)

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
        for _ in range(4):  # the manifest first, then its blobs (again if any arrived corrupt)
            if not reply["missing"]:
                break
            await self._upload(reply["missing"])
            reply = await self.call("prepare", copy_timeout, **ask)
        else:
            raise TargetRefused(
                f"blobs keep arriving corrupt on {self.settings.where}",
                run_id=self.job.run_id,
                target=self.name,
            )
        where = self.settings.where
        ctx.log(
            f"ferry: {where}: snapshot of {reply['files']} files; sent {self.sent.files} "
            f"blob(s), {self.sent.bytes} bytes"
        )
        for warning in reply.get("warnings") or []:
            ctx.log(f"ferry: {warning}")
        await self._datasets(ctx, manifests or {})
        if runtime_dir is None:
            runtime_dir = f"{session.work_dir}/runtime/{runtime.name}"
            await asyncio.wait_for(
                upload_folder(await self.sftp(), runtime, session.work_dir, runtime_dir),
                self.settings.command_timeout,
            )
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

    async def _datasets(self, ctx: PrepareContext, manifests: Mapping[str, Manifest]) -> None:
        """The job's input datasets in the host's cache (only the blobs it lacks are sent): a
        shared read-only copy per version, or a copy for ``as_download``; its output folders."""
        job = self.job
        where = {"run_dir": self.run_dir, "workdir": f"{self.run_dir}/wd"}
        places = datasets.input_places(job, **where)
        for spec in job.inputs:
            shared = spec.mechanism != "download" and spec.path_on_compute is None
            ask = {
                "manifest": spec.manifest_id,
                "mechanism": spec.mechanism,
                "dest": None if shared else places[spec.name],
            }
            if spec.path_on_compute is not None:
                self.data_paths.append(places[spec.name])
            timeout = self.settings.command_timeout + len(manifests[spec.name]) / 200
            before = self.sent.bytes
            reply = await self.call("dataset", timeout, **ask)
            for _ in range(4):
                if not reply["missing"]:
                    break
                await self._upload(reply["missing"])
                reply = await self.call("dataset", timeout, **ask)
            else:
                raise TargetRefused(
                    f"the blobs of dataset {spec.label} keep arriving corrupt on "
                    f"{self.settings.where}",
                    run_id=job.run_id,
                    target=self.name,
                )
            self.data_inputs[spec.name] = datasets.job_path(spec, str(reply["path"]))
            ctx.log(
                f"ferry: {self.settings.where}: dataset {spec.label} as input {spec.name!r} at "
                f"{reply['path']} ({spec.mechanism}); sent {self.sent.bytes - before} bytes"
            )
        self.data_outputs = datasets.output_places(job, **where)
        if self.data_outputs:
            await self.call("mkdirs", paths=list(self.data_outputs.values()))
            self.data_paths += [
                p for p in self.data_outputs.values() if not p.startswith(self.run_dir)
            ]
        if job.inputs:
            datasets.record_inputs(self.workspace, job, places)

    def data_variables(self) -> dict[str, str]:
        return datasets.variables(self.job, self.data_inputs, self.data_outputs)

    def data_argv(self, argv: list[str]) -> list[str]:
        return datasets.substitute(argv, self.job, self.data_inputs, self.data_outputs)

    async def collect_data_outputs(self, staging: Path) -> dict[str, Path]:
        """Bring the job's output folders back (``staging/<name>``) to be saved."""
        staged = {}
        for name, remote in self.data_outputs.items():
            local = staging / name
            if local.exists():
                shutil.rmtree(local)
            await asyncio.wait_for(
                download_folder(await self.sftp(), remote, local), self.settings.build_timeout
            )
            staged[name] = local
        return staged

    async def _upload(self, digests: list[str]) -> None:
        assert self.session is not None
        blobs = self.workspace.blobs
        size = sum(Path(blobs.path(d)).stat().st_size for d in digests)
        timeout = self.settings.command_timeout + size / 1e6
        sent, packs = await asyncio.wait_for(
            upload_blobs(await self.sftp(), blobs, digests, self.session.work_dir), timeout
        )
        if packs:
            await self.call("unpack", timeout, packs=packs, algo=blobs.algo)
        self.sent.files += sent.files
        self.sent.bytes += sent.bytes

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

    def _drop_connection(self) -> None:
        if self.session is not None:
            self.session.close()
        if self.conn is not None:
            self.conn.close()
        self.session = self.conn = self._sftp = None

    async def cancel(self, grace: float) -> None:
        self._cancel_grace = grace
        try:
            await self.call("kill", run=self.job.run_id, grace=grace)
        except SessionLost:
            pass  # sent again as soon as the connection is back

    async def collect_outputs(self, dest: Path) -> None:
        if not (self.exit and self.exit.get("outputs")):
            return
        await asyncio.wait_for(
            download_folder(await self.sftp(), f"{self.run_dir}/wd/outputs", dest),
            self.settings.build_timeout,
        )

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
