"""The one error tree of ferry.

Every error ferry raises on purpose is a :class:`FerryError`; the CLI and the server each turn it
into a message or an HTTP status in exactly one place. Foreign exceptions are translated where they
cross into ferry (``raise StoreError(...) from exc``)::

    FerryError
    ├── ConfigError            bad user input: names, paths, YAML, arguments (CLI exit 2)
    │   ├── ExperimentNameError
    │   ├── LogTypeError       (also a TypeError) a value of the wrong kind for run.log*/upload*
    │   └── LogValueError      (also a ValueError) a value the run history cannot keep
    ├── SnapshotError          the source folder cannot be snapshotted or restored
    ├── EnvironmentBuildError  an environment cannot be resolved or built
    ├── TargetError            a compute target is unknown, unreachable or refused the job
    │   ├── TargetNotFound
    │   ├── TargetUnavailable  unreachable or timed out: worth retrying (transient)
    │   ├── TargetRefused      the target cannot run this job (permanent)
    │   └── JobLost            the job is gone (its host rebooted, its node died)
    ├── StoreError             the run history cannot be read or written
    │   ├── RunNotFound
    │   └── InvalidTransition  a status change the transition table forbids
    └── RunFailed              wait_for_completion(raise_on_error=True) on a Failed/Canceled run
"""

from __future__ import annotations

from typing import Any


class FerryError(Exception):
    """Base of every error ferry raises on purpose."""

    exit_code = 2


class ConfigError(FerryError):
    """The user's configuration or input is wrong; the message names the problem and the fix."""


class ExperimentNameError(ConfigError):
    """An experiment name breaks the reference's naming rule."""


class LogTypeError(ConfigError, TypeError):
    """A value of the wrong kind given to a run's log or upload call (a list to ``run.log``)."""


class LogValueError(ConfigError, ValueError):
    """A value of the right kind the run history cannot keep (columns of different lengths,
    an artifact name with ``..``, an int too long to write)."""


class SnapshotError(FerryError):
    """The source folder cannot be snapshotted, or a snapshot cannot be restored."""


class EnvironmentBuildError(FerryError):
    """An environment specification cannot be resolved or built."""


class BuildCancelled(EnvironmentBuildError):
    """An environment's build was stopped because its run was canceled."""


class TargetError(FerryError):
    """A compute target is unknown, unreachable, or refused the job."""


class TargetNotFound(TargetError, ConfigError):
    """No compute target of that name is attached to the workspace."""


class _RunTargetError(TargetError):
    """A target error about one run on one target (both named, when known)."""

    def __init__(self, message: str, *, run_id: str | None = None, target: str | None = None):
        super().__init__(message)
        self.run_id = run_id
        self.target = target


class TargetUnavailable(_RunTargetError):
    """The target cannot be reached now (refused connection, timeout): a retry may work."""


class TargetRefused(_RunTargetError):
    """The target cannot run this job as configured; the message names what to change."""


class JobLost(_RunTargetError):
    """The job's process or node is gone without an exit code."""


class StoreError(FerryError):
    """The run history cannot be read or written."""


class RunNotFound(StoreError, ConfigError):
    """No run with that id exists in the workspace."""


class InvalidTransition(StoreError):
    """The store refused a status change that its transition table forbids."""


class RunFailed(FerryError):
    """A run ended Failed or Canceled while the caller asked to raise on error."""

    exit_code = 1

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


# The reference raises ActivityFailedException from wait_for_completion; keep the name for ports.
ActivityFailedException = RunFailed
# The reference's compute errors (ComputeTarget(ws, "missing") raises it): ferry's target errors.
ComputeTargetException = TargetError
