"""What a run handle knows of its run: identity, status, names, details (read from the store).

:class:`RunState` is the base of :class:`ferry.run.Run`; the other parts of the handle (logging,
files, logs, snapshots) build on it, each in a module of its own. Reads go to the run history,
cached once the run has ended (a terminal run no longer changes, except by its driver's own
writes, which clear the cache).

Example::

    run = ws.get_run("diabetes_1718000000_ab12cd34")
    run.status, run.number, run.type      # "Completed", 3, "azureml.scriptrun"
    run.display_name = "ridge, alpha 0.5"  # stored
"""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry import liveness
from ferry.errors import ConfigError
from ferry.targets.base import LOG_NAME
from ferry.tracking import RunRecord, RunStore, StoreOp

if TYPE_CHECKING:
    from ferry.experiment import Experiment
    from ferry.workspace import Workspace

#: run types as the reference names them, for the types ferry stores under its own names
REFERENCE_RUN_TYPES = {"ferry.scriptrun": "azureml.scriptrun"}
#: longest display name the run history keeps (its column's width)
MAX_DISPLAY_NAME = 255


def reference_run_type(stored: str) -> str:
    """The run type users see: the reference's name where there is one."""
    return REFERENCE_RUN_TYPES.get(stored, stored)


def run_type_matches(stored: str, wanted: str | None) -> bool:
    """True when a ``type=`` filter asks for this stored type, by either of its names."""
    return wanted is None or wanted in (stored, reference_run_type(stored))


def iso_time(ts: float | None) -> str | None:
    """A Unix time as the reference's ISO-8601 UTC text (``2024-06-10T08:00:00.123Z``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class RunState:
    """Identity and state of one run of an experiment (the base of :class:`ferry.run.Run`)."""

    def __init__(
        self, experiment: Experiment, run_id: str, _record: RunRecord | None = None
    ) -> None:
        self.experiment = experiment
        self.id = run_id
        self._record = _record

    # where the run lives --------------------------------------------------------------------
    @property
    def workspace(self) -> Workspace:
        return self.experiment.workspace

    @property
    def _store(self) -> RunStore:
        return self.workspace.store

    @property
    def run_dir(self) -> Path:
        return self.workspace.runs_dir / self.id

    def _refresh(self) -> RunRecord:
        if self._record is None or not self._record.status.is_terminal():
            self._record = liveness.check(self._store, self._store.get_run(self.id))
        return self._record

    @property
    def record(self) -> RunRecord:
        return self._refresh()

    def _apply(self, ops: Sequence[StoreOp]) -> None:
        """Write ``ops`` in one transaction; an op the store refuses is a ConfigError."""
        refused = self._store.apply(ops)
        self._record = None
        if refused:
            raise ConfigError(f"run {self.id}: " + "; ".join(refused))

    # status -----------------------------------------------------------------------------------
    def get_status(self) -> str:
        return self._refresh().status.value

    @property
    def status(self) -> str:
        return self.get_status()

    def get_detailed_status(self) -> dict[str, str]:
        """``{"status": …, "details": …}``: why a Queued run waits (e.g. for cluster resources)."""
        rec = self._refresh()
        return {
            "status": rec.status.value,
            "details": str(rec.tags.get("ferry.status_details") or ""),
        }

    # names ----------------------------------------------------------------------------------
    @property
    def display_name(self) -> str:
        """The name shown for the run (its id until one is set); setting it stores it."""
        return self._refresh().display_name or self.id

    @display_name.setter
    def display_name(self, value: str) -> None:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"a run's display_name must be a non-empty str, got {value!r}")
        if len(value) > MAX_DISPLAY_NAME:
            raise ConfigError(
                f"a run's display_name may have at most {MAX_DISPLAY_NAME} characters, "
                f"got {len(value)}; put longer text in run.description"
            )
        self._store.update_run(self.id, display_name=value)
        self._record = None

    @property
    def description(self) -> str | None:
        """Free text about the run (None until set); setting it stores it."""
        return self._refresh().description

    @description.setter
    def description(self, value: str | None) -> None:
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"a run's description must be a str or None, got {value!r}")
        self._store.update_run(self.id, description=value)
        self._record = None

    @property
    def number(self) -> int:
        """The run's number in its experiment: 1 for its first run, then 2, 3, …"""
        return self._refresh().number or 0

    @property
    def type(self) -> str:
        """How the run was made: ``azureml.scriptrun`` for a submitted script, as the
        reference; ``ferry.interactive`` (start_logging) and ``ferry.childrun`` otherwise."""
        return reference_run_type(self._refresh().run_type)

    # details ----------------------------------------------------------------------------------
    def get_details(self) -> dict[str, Any]:
        """The reference's keys: runId, target, status, startTimeUtc, endTimeUtc, properties, …"""
        rec = self._refresh()
        details: dict[str, Any] = {
            "runId": rec.id,
            "target": rec.target,
            "status": rec.status.value,
            "startTimeUtc": iso_time(rec.start_time),
            "properties": dict(rec.properties),
            "inputDatasets": [],
            "outputDatasets": [],
            "runDefinition": dict(rec.definition),
            "logFiles": self._log_files(),
            "submittedBy": str(rec.definition.get("submittedBy") or _current_user()),
            "tags": dict(rec.tags),
            "timings": dict(rec.timings),
        }
        if rec.end_time is not None:
            details["endTimeUtc"] = iso_time(rec.end_time)
        if rec.snapshot:
            details["snapshot"] = {k: v for k, v in rec.snapshot.items() if k != "git"}
        if rec.error:
            details["error"] = dict(rec.error)
        if rec.parent_id:
            details["parentRunId"] = rec.parent_id
        lineage = getattr(self, "_dataset_lineage", None)
        if lineage is not None:
            details["inputDatasets"], details["outputDatasets"] = lineage()
        return details

    def _log_files(self) -> dict[str, str]:
        """The main log, then every other rank's log of a distributed run: name → path."""
        main = self.run_dir / LOG_NAME
        logs = {LOG_NAME: str(main)} if main.exists() else {}
        for rank_log in sorted(main.parent.glob("std_log_rank_*.txt")):
            logs[f"user_logs/{rank_log.name}"] = str(rank_log)
        return logs

    def get_portal_url(self) -> str:
        """The run's page in ferry's UI when one serves the workspace (``ferry ui``, or the
        workspace's server), else the run's folder."""
        from ferry.ui.address import run_url

        return run_url(self.workspace, self.id) or f"file://{self.run_dir}"


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return ""
