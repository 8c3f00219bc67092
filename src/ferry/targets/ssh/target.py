"""The SSH target: a job runs on another machine reached over SSH, followed live from here.

Example::

    from ferry import ComputeTarget, RemoteCompute, ScriptRunConfig
    ComputeTarget.attach(ws, "vm", RemoteCompute.attach_configuration(
        username="me", address="10.0.0.4", private_key_file="~/.ssh/id_ed25519"))
    Experiment(ws, "exp").submit(ScriptRunConfig("src", "train.py", compute_target="vm"))

The supervisor drives it through the usual contract; the connection lives on a private asyncio
loop in a daemon thread (:class:`LoopThread`), so the bytes the host streams back land in the
local run folder as they arrive and ``sync()`` has nothing left to do. Every remote call has a
timeout; foreign errors become :class:`~ferry.errors.TargetError`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

from ferry.errors import TargetError
from ferry.targets.base import JobSpec, Target
from ferry.targets.ssh.connect import open_connection
from ferry.targets.ssh.hostkeys import KNOWN_HOSTS_FILE
from ferry.targets.ssh.remote_env import refusal
from ferry.targets.ssh.remote_run import RemoteRun
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

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """The coroutine's result (every remote call inside it has its own timeout too)."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:  # the outer wait, or a timeout inside the coroutine
            if not future.done():
                future.cancel()
                raise TargetError(f"{self.where} did not answer within {timeout} s") from None
            raise TargetError(f"an operation on {self.where} timed out") from None
        except (asyncssh.Error, OSError) as exc:
            raise TargetError(f"SSH to {self.where} failed: {exc}") from exc

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()


class SshTarget(Target):
    """Runs a job on a machine reached over SSH (see the module docstring)."""

    kind = "ssh"

    def __init__(self, name: str, config: Mapping[str, Any], workspace: Any) -> None:
        super().__init__(name, config, workspace)
        self.settings = SshSettings.from_config(config)
        self._loop: LoopThread | None = None
        self._run: RemoteRun | None = None
        self._logs_dir: Path | None = None

    @property
    def remote(self) -> RemoteRun:
        if self._run is None or self._loop is None:
            raise TargetError("the ssh target was not prepared")
        return self._run

    def _call(
        self, make: Callable[[RemoteRun], Coroutine[Any, Any, T]], timeout: float | None = None
    ) -> T:
        assert self._loop is not None
        return self._loop.run(make(self.remote), timeout)

    @property
    def bytes_sent(self) -> int:
        """Blob bytes this run sent to the host (0 when it had the whole snapshot)."""
        return self._run.sent.bytes if self._run is not None else 0

    def prepare(self, job: JobSpec, log: Callable[[str], None]) -> dict[str, Any]:
        self._logs_dir = job.run_dir / "wd" / "logs"
        self._logs_dir.mkdir(parents=True, exist_ok=True)
        self._loop = LoopThread(self.settings.where)
        self._run = RemoteRun(self.name, self.settings, self.workspace, job, self._logs_dir)
        return self._call(lambda run: run.prepare(log))

    def start(self, job: JobSpec) -> dict[str, Any]:
        return self._call(lambda run: run.launch())

    def poll(self) -> int | None:
        run = self.remote
        if run.exit is not None:
            return int(run.exit["code"])
        if run.fatal is not None:
            raise run.fatal
        return None

    def wait(self, timeout: float) -> int | None:
        self.remote.done.wait(timeout)
        return self.poll()

    def sync(self) -> None:
        """Nothing to do: streamed bytes are written to the run folder as they arrive."""
        if self._run is not None and self._run.fatal is not None and self._run.exit is None:
            raise self._run.fatal

    def cancel(self, grace_seconds: float) -> None:
        self._call(lambda run: run.cancel(grace_seconds), self.settings.command_timeout + 5)

    def collect_outputs(self, dest: Path) -> None:
        self._call(lambda run: run.collect_outputs(dest))

    def watched_dirs(self) -> list[Path]:
        return [self._logs_dir] if self._logs_dir is not None else []

    def close(self) -> None:
        keep = bool(os.environ.get("FERRY_KEEP_WORKDIR"))
        if self._loop is not None:
            try:
                if self._run is not None:
                    self._call(lambda run: run.close(keep), self.settings.command_timeout + 10)
            except TargetError:
                pass
            finally:
                self._loop.stop()
        if self._logs_dir is not None and not keep:
            shutil.rmtree(self._logs_dir.parent, ignore_errors=True)

    @classmethod
    def status(cls, name: str, config: Mapping[str, Any], workspace: Any) -> dict[str, Any]:
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
    def check_definition(cls, name: str, definition: Mapping[str, Any]) -> None:
        """Refuse at submit what a host cannot run (Docker, conda-only packages)."""
        from ferry.environment import Environment

        problem = refusal(Environment.from_dict(definition.get("environment") or {}))
        if problem:
            raise TargetError(f"compute target {name!r}: {problem}")

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        return validate_config(config)


async def _probe(name: str, settings: SshSettings, workspace: Any) -> dict[str, Any]:
    conn = await open_connection(name, settings, Path(workspace.path) / KNOWN_HOSTS_FILE)
    try:
        session = await AgentSession.start(conn, settings, lambda header, payload: None)
        session.close()
        return session.hello
    finally:
        conn.close()
