"""The compute-target contract: one small class per kind of machine.

The supervisor (written once, above this contract) drives a target through one run::

    target.prepare(job, log)   # Preparing: put the snapshot and the environment in place
    target.start(job)          # Starting: launch the job; its log and spool land in job.run_dir
    target.poll()              # None while running, then the exit code
    target.sync()              # bring the log, spool and ./logs into job.run_dir (remote kinds)
    target.cancel(grace)       # TERM the whole job, KILL after ``grace`` seconds
    target.collect_outputs(d)  # move ./outputs into folder d
    target.close()             # release connections and working folders

A local target writes the log and spool straight into ``job.run_dir``; a remote target copies
them there in ``sync()``. Waiting, log tailing, spool ingestion, time limits and heartbeats are
the supervisor's, never a target's.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

LOG_NAME = "user_logs/std_log.txt"


@dataclass(frozen=True)
class JobSpec:
    """Everything a target needs to run one job."""

    run_id: str
    experiment: str
    run_dir: Path
    definition: Mapping[str, Any]
    snapshot_id: str | None
    source_dir: Path | None
    env_vars: Mapping[str, str] = field(default_factory=dict)
    parent_run_id: str | None = None

    @property
    def log_path(self) -> Path:
        return self.run_dir / LOG_NAME

    @property
    def spool_dir(self) -> Path:
        return self.run_dir / "spool"


class Target(abc.ABC):
    """One run's handle on a compute target of some kind."""

    kind: ClassVar[str]

    def __init__(self, name: str, config: Mapping[str, Any], workspace: Any) -> None:
        self.name = name
        self.config = dict(config)
        self.workspace = workspace

    @abc.abstractmethod
    def prepare(self, job: JobSpec, log: Callable[[str], None]) -> dict[str, Any]:
        """Materialise the snapshot and resolve the environment where the job will run.

        Returns facts to keep with the run: ``env_hash`` and ``env_lock`` when an environment
        was built or reused.
        """

    @abc.abstractmethod
    def start(self, job: JobSpec) -> dict[str, Any]:
        """Launch the job; returns facts to record on the run (pid, pgid, host …)."""

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
    def watched_dirs(self) -> list[Path]:
        """Local folders mirrored live as artifacts (./logs, after ``sync()``)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and working folders."""

    @classmethod
    def check_definition(cls, name: str, definition: Mapping[str, Any]) -> None:
        """Refuse, before a run is recorded, a job this kind cannot run (raise TargetError)."""
        return None  # every kind runs every job unless it says otherwise

    @classmethod
    def status(cls, name: str, config: Mapping[str, Any], workspace: Any) -> dict[str, Any]:
        """What the target reports about itself; kinds with a cluster list nodes and resources."""
        return {"name": name, "kind": cls.kind}

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """Check an attach configuration; returns the dict to store (no secrets)."""
        return dict(config)
