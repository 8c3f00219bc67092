"""The SSH target: a job runs on another machine reached over SSH, followed live from here.

Example::

    from ferry import ComputeTarget, RemoteCompute, ScriptRunConfig
    ComputeTarget.attach(ws, "vm", RemoteCompute.attach_configuration(
        username="me", address="10.0.0.4", private_key_file="~/.ssh/id_ed25519"))
    Experiment(ws, "exp").submit(ScriptRunConfig("src", "train.py", compute_target="vm"))

The supervisor drives it through the usual contract; the connection lives on a private asyncio
loop in a daemon thread (:class:`LoopThread`), so the bytes the host streams back land in the
local run folder as they arrive and ``sync()`` has nothing left to do. Every remote call has a
timeout. Errors carry the run and the target: an unreachable host or a call without an answer
is :class:`~ferry.errors.TargetUnavailable`, what the host refuses is
:class:`~ferry.errors.TargetRefused`, a job that vanished is :class:`~ferry.errors.JobLost`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import threading
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

from ferry.envbuild import effective_environment
from ferry.errors import (
    ConfigError,
    FerryError,
    JobLost,
    TargetError,
    TargetRefused,
    TargetUnavailable,
)
from ferry.spec import JobSpec, PrepareContext, WorkspaceServices
from ferry.targets import datasets, distributed
from ferry.targets.base import Prepared, Started, Target
from ferry.targets.ssh.connect import open_connection
from ferry.targets.ssh.hostkeys import KNOWN_HOSTS_FILE
from ferry.targets.ssh.remote_env import refusal
from ferry.targets.ssh.remote_mpi import failed_rank_note
from ferry.targets.ssh.remote_run import RemoteRun, remote_result
from ferry.targets.ssh.session import AgentSession
from ferry.targets.ssh.settings import SshSettings, validate_config

T = TypeVar("T")


class LoopThread:
    """An asyncio loop in a daemon thread; :meth:`run` waits for a coroutine from any thread."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="ferry-ssh", daemon=True)
        self._thread.start()

    def run(
        self,
        coro: Coroutine[Any, Any, T],
        timeout: float | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> T:
        """The coroutine's result (every remote call inside it has its own timeout too);
        ``cancelled`` is asked while waiting, and ends the wait when it says so."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        deadline = None if timeout is None else self.loop.time() + timeout
        try:
            while True:
                try:
                    return future.result(0.25 if cancelled is not None else timeout)
                except concurrent.futures.TimeoutError:
                    if future.done():
                        raise  # the coroutine's own timeout
                if cancelled is not None and cancelled():
                    future.cancel()
                    raise TargetError("the run was canceled while it was being prepared")
                if deadline is not None and self.loop.time() >= deadline:
                    future.cancel()
                    raise TargetUnavailable(f"{self.where} did not answer within {timeout} s")
        except TimeoutError:  # a timeout inside the coroutine
            raise TargetUnavailable(f"an operation on {self.where} timed out") from None
        except (asyncssh.Error, OSError) as exc:
            raise TargetUnavailable(f"SSH to {self.where} failed: {exc}") from exc

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()


class SshTarget(Target):
    """Runs a job on a machine reached over SSH (see the module docstring)."""

    kind = "ssh"

    def __init__(self, name: str, config: Mapping[str, Any], workspace: WorkspaceServices) -> None:
        super().__init__(name, config, workspace)
        self.settings = SshSettings.from_config(config)
        self._loop: LoopThread | None = None
        self._run: RemoteRun | None = None
        self._job: JobSpec | None = None
        self._noted = False

    @property
    def remote(self) -> RemoteRun:
        if self._run is None or self._loop is None:
            raise TargetError("the ssh target was not prepared")
        return self._run

    def _call(
        self,
        make: Callable[[RemoteRun], Coroutine[Any, Any, T]],
        timeout: float | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> T:
        assert self._loop is not None
        try:
            return self._loop.run(make(self.remote), timeout, cancelled)
        except FerryError as exc:
            raise self._named(exc) from exc.__cause__

    def _named(self, exc: FerryError) -> FerryError:
        """The error, naming this run and this target."""
        if isinstance(exc, TargetUnavailable | TargetRefused | JobLost):
            exc.run_id = exc.run_id or (self._job.run_id if self._job else None)
            exc.target = exc.target or self.name
        return exc

    @property
    def bytes_sent(self) -> int:
        """Blob bytes this run sent to the host (0 when it had the whole snapshot)."""
        return self._run.sent.bytes if self._run is not None else 0

    @classmethod
    def check_job(cls, name: str, job: JobSpec) -> None:
        """Refuse at submit what a host cannot run: several nodes (ConfigError: an ssh target
        is one machine), conda-only packages (TargetRefused). A Docker run's engine and an MPI
        job's Open MPI are the host's: checked when the run prepares, before anything is built
        or started there."""
        plan = job.distributed
        nodes = plan.node_count if plan is not None else job.node_count
        if nodes > 1:
            raise ConfigError(
                f"compute target {name!r} is one machine (ssh), so node_count={nodes} cannot "
                "run there; use node_count=1 with several processes (process_count or "
                "process_count_per_node), or a multi-node target such as ray"
            )
        if job.environment.docker.wanted:  # the host's engine is checked when preparing
            from ferry.targets.container import check_docker_job

            check_docker_job(name, cls.kind, job, engine_here=False)
        problem = refusal(effective_environment(job.environment)[0])
        if problem:
            raise TargetRefused(
                f"compute target {name!r}: {problem}", run_id=job.run_id, target=name
            )

    def prepare(self, job: JobSpec, ctx: PrepareContext) -> Prepared:
        from ferry.runtime.layout import build_runtime_path

        self._job = job
        self.check_job(self.name, job)
        snapshot_id, files = self._snapshot(job, ctx)
        manifests = datasets.local_manifests(self.workspace, job, ctx.log) if job.inputs else {}
        runtime = build_runtime_path(self.workspace.path / "runtime")
        self._loop = LoopThread(self.settings.where)
        self._run = RemoteRun(self.name, self.settings, self.workspace, job)
        return self._call(
            lambda run: run.prepare(ctx, snapshot_id, files, runtime, manifests),
            cancelled=ctx.cancelled,
        )

    def _snapshot(self, job: JobSpec, ctx: PrepareContext) -> tuple[str, int]:
        """The run's snapshot, or (``history.snapshot_project=False``) one taken now of its
        source folder, to be sent: the host needs the files either way."""
        from ferry.snapshot import load_manifest, take_snapshot

        blobs = self.workspace.blobs
        if job.snapshot_id:
            return job.snapshot_id, len(load_manifest(blobs, job.snapshot_id))
        if job.source_dir is None:
            raise TargetRefused(
                "the run has neither a snapshot nor a source folder", run_id=job.run_id,
                target=self.name,
            )  # fmt: skip
        ctx.log(
            "ferry: history.snapshot_project is False: the source folder is sent to the host as "
            "it is now, and the run keeps no snapshot of it"
        )
        result = take_snapshot(
            job.source_dir,
            blobs,
            self.workspace.cache_dir / "snapshots",
            exclude=[self.workspace.path],  # a workspace inside the source folder
        )
        return result.snapshot_id, result.stats.files

    def start(self, job: JobSpec) -> Started:
        return self._call(lambda run: run.launch())

    def poll(self) -> int | None:
        try:
            code = remote_result(self.remote)
        except FerryError as exc:
            raise self._named(exc) from None
        return None if code is None else self._note_failed_rank(code)

    def wait(self, timeout: float) -> int | None:
        self.remote.done.wait(timeout)
        return self.poll()

    def _note_failed_rank(self, code: int) -> int:
        """A distributed job: repeat the failing rank's error at the end of the main log; the
        run's exit code (an MPI job's is the failing rank's, from mpirun's report)."""
        run = self.remote
        if run.mpirun is not None and run.job.distributed is not None:
            code, note = failed_rank_note(
                code, run.job.log_path.parent, run.job.distributed.world_size
            )
            if note is not None and not self._noted:
                self._noted = True
                run.sink.note(note)
            return code
        failed = (run.exit or {}).get("failed_rank")
        if self._noted or not isinstance(failed, int) or failed == 0:
            return code
        self._noted = True
        try:
            with open(run.job.paths.rank_log(failed), "rb") as fh:
                fh.seek(max(0, os.fstat(fh.fileno()).st_size - 65536))
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            text = ""
        run.sink.note(distributed.failure_note(failed, code, text))
        return code

    def sync(self) -> None:
        """Nothing to do: streamed bytes are written to the run folder as they arrive."""
        if self._run is not None and self._run.fatal is not None and self._run.exit is None:
            raise self._named(self._run.fatal)

    def note(self, text: str) -> bool:
        """The local log has one writer, the stream's: ferry's own lines go through it."""
        return self._run is not None and self._run.sink.note(text)

    def cancel(self, grace_seconds: float) -> None:
        self._call(lambda run: run.cancel(grace_seconds), self.settings.command_timeout + 5)

    def collect_outputs(self, dest: Path) -> None:
        from ferry.targets.local import keep_rank_logs

        if self._job is not None:
            keep_rank_logs(self.workspace, self._job.run_id, self._job.run_dir)
        self._call(lambda run: run.collect_outputs(dest))
        if self._job is None or self._run is None:
            return
        job, run = self._job, self._run
        succeeded = (run.exit or {}).get("code") == 0
        staged = (
            self._call(lambda r: r.collect_data_outputs(job.run_dir / "data_outputs"))
            if succeeded and job.outputs
            else {}
        )
        datasets.finish(
            self.workspace, job, outputs_dir=dest, staged=staged, succeeded=succeeded,
            log=self._log_line,
        )  # fmt: skip

    def _log_line(self, text: str) -> None:
        if not self.note(text) and self._job is not None:
            with open(self._job.log_path, "a", encoding="utf-8", errors="backslashreplace") as fh:
                fh.write(text.rstrip("\n") + "\n")

    def watched_dirs(self) -> dict[str, Path]:
        if self._run is None or self._job is None:
            return {}
        return {name: self._run.sink.workdir / name for name in self._job.watched_dirs}

    def close(self) -> None:
        keep = bool(os.environ.get("FERRY_KEEP_WORKDIR"))
        if self._loop is not None:
            try:
                if self._run is not None:
                    self._call(lambda run: run.close(keep), self.settings.command_timeout + 10)
            except FerryError:
                pass
            finally:
                self._loop.stop()
        if self._run is not None:
            self._run.sink.close()
            if not keep:
                shutil.rmtree(self._run.sink.workdir, ignore_errors=True)

    @classmethod
    def status(
        cls, name: str, config: Mapping[str, Any], workspace: WorkspaceServices
    ) -> dict[str, Any]:
        """Connects, starts the agent and reports the host (raises TargetError if it cannot)."""
        settings = SshSettings.from_config(config)
        loop = LoopThread(settings.where)
        try:
            hello = loop.run(_probe(name, settings, workspace), settings.connect_timeout * 3 + 10)
        finally:
            loop.stop()
        return {
            "name": name,
            "kind": cls.kind,
            "address": settings.where,
            "reachable": True,
            "host": hello.get("host"),
            "python": ".".join(str(p) for p in hello.get("python") or []),
            "platform": hello.get("platform"),
            "work_dir": hello.get("work_dir"),
        }

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        return validate_config(config)


async def _probe(name: str, settings: SshSettings, workspace: WorkspaceServices) -> dict[str, Any]:
    conn = await open_connection(name, settings, workspace.path / KNOWN_HOSTS_FILE)
    try:
        session = await AgentSession.start(conn, settings, lambda header, payload: None)
        session.close()
        return session.hello
    finally:
        conn.close()
