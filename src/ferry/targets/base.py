"""The compute-target contract: one small class per kind of machine.

The supervisor (written once, above this contract) drives a target through one run::

    target.prepare(job, ctx) -> Prepared   # Preparing: the snapshot and the environment in place
    target.start(job) -> Started           # Starting: launch; the log and spool reach job.paths
    target.wait(timeout) / target.poll()   # None while running, then the exit code
    target.sync()                          # bring the log, spool and watched folders back
    target.cancel(grace)                   # stop the whole job: TERM, KILL after ``grace``
    target.collect_outputs(d)              # move ./outputs into folder d
    target.close()                         # release connections and working folders

It takes plain data (:class:`~ferry.spec.JobSpec`, :class:`~ferry.spec.PrepareContext`,
:class:`~ferry.spec.WorkspaceServices`) and returns plain data; it never sees a public class.
Waiting, log tailing, spool ingestion, time limits and heartbeats are the supervisor's, never a
target's. Errors a caller may retry (:class:`~ferry.errors.TargetUnavailable`) are apart from
refusals (:class:`~ferry.errors.TargetRefused`) and lost jobs (:class:`~ferry.errors.JobLost`).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ferry.spec import JobSpec, PrepareContext, WorkspaceServices

LOG_NAME = "user_logs/std_log.txt"

__all__ = ["LOG_NAME", "JobSpec", "Prepared", "Started", "Target"]


@dataclass(frozen=True)
class Prepared:
    """What preparing found out: the environment's hash and resolved lock (when built)."""

    env_hash: str | None = None
    env_lock: str | None = None


@dataclass(frozen=True)
class Started:
    """Where the job runs: the host, and the process group on it (when there is one)."""

    host: str
    job_pgid: int | None = None
    remote_pid: int | None = None
    ranks: int = 1


class Target(abc.ABC):
    """One run's handle on a compute target of some kind."""

    kind: ClassVar[str]

    def __init__(self, name: str, config: Mapping[str, Any], workspace: WorkspaceServices) -> None:
        self.name = name
        self.config = dict(config)
        self.workspace = workspace

    @abc.abstractmethod
    def prepare(self, job: JobSpec, ctx: PrepareContext) -> Prepared:
        """Materialise the snapshot and resolve the environment where the job will run.

        ``ctx`` takes log lines, hears that the run waits for resources, and says when the run
        is to stop (check ``ctx.cancelled()`` in long waits).
        """

    @abc.abstractmethod
    def start(self, job: JobSpec) -> Started:
        """Launch the job; returns where it runs."""

    @abc.abstractmethod
    def poll(self) -> int | None:
        """The job's exit code once it has ended, else None."""

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds for the job to end; returns :meth:`poll`."""
        import time

        time.sleep(timeout)
        return self.poll()

    def note(self, text: str) -> bool:
        """Write a line of ferry's own into the running job's log, if this kind has a writer
        of that log that must stay its only one; False when the caller should append it."""
        return False

    def sync(self) -> None:  # noqa: B027 - local kinds have nothing to bring back
        """Bring the log, spool and watched folders into the job's run_dir."""

    @abc.abstractmethod
    def cancel(self, grace_seconds: float) -> None:
        """Stop the whole job: TERM, then KILL after ``grace_seconds``."""

    @abc.abstractmethod
    def collect_outputs(self, dest: Path) -> None:
        """Move the job's ./outputs folder into ``dest``."""

    @abc.abstractmethod
    def watched_dirs(self) -> dict[str, Path]:
        """Folders mirrored live as artifacts: artifact prefix (``job.watched_dirs``, ``logs``
        by default) → the local folder holding it (after ``sync()`` for remote kinds)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and working folders."""

    @classmethod
    def check_job(cls, name: str, job: JobSpec) -> None:
        """Refuse, before a run is recorded, a job this kind cannot run (raise TargetRefused
        or ConfigError)."""
        return None  # every kind runs every job unless it says otherwise

    @classmethod
    def status(
        cls, name: str, config: Mapping[str, Any], workspace: WorkspaceServices
    ) -> dict[str, Any]:
        """What the target reports about itself; kinds with a cluster list nodes and resources."""
        return {"name": name, "kind": cls.kind}

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """Check an attach configuration; returns the dict to store (no secrets)."""
        return dict(config)
