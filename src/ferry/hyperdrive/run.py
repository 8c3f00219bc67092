"""HyperDriveRun: the handle on a sweep — its children, their results, the best one.

Results are read in a fixed number of queries whatever the sweep's size: the children in one
(``list_runs``), the primary metric of all of them in one (``get_series``), the values sampled
from the sweep's own tags — a 1,000-child sweep is sorted in milliseconds (the reference took
minutes for 300). The shapes are the reference's:

- ``get_children_sorted_by_primary_metric(top, reverse, discard_no_metric)`` →
  ``[{"run_id", "hyperparameters", "best_primary_metric", "status"}]`` (best first; children
  without the metric last, unless discarded);
- ``get_hyperparameters()`` → ``{child id: JSON text of its values}``;
- ``get_metrics()`` → ``{child id: {name: value or list}}``.

Reading a sweep also looks after it: a sweep that is live on this machine but has no controller
(both it and its keeper were killed, the machine rebooted) gets one again, which resumes it.

Example::

    run = experiment.submit(hyperdrive_config)
    run.wait_for_completion(show_output=True)    # a line per child start, end, termination
    best = run.get_best_run_by_primary_metric()
    run.get_children_sorted_by_primary_metric(top=5)
"""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

from ferry import liveness
from ferry.errors import ConfigError, RunFailed
from ferry.hyperdrive import children as kids
from ferry.hyperdrive.keeper import controller_running, launch_controller
from ferry.hyperdrive.state import numbers
from ferry.hyperdrive.sweep import RUN_TYPE, SweepSpec
from ferry.metrics import shape
from ferry.run import Run
from ferry.status import RunStatus
from ferry.tracking import RunQuery, RunRecord

if TYPE_CHECKING:
    from ferry.experiment import Experiment
    from ferry.hyperdrive.config import HyperDriveConfig

_LIVE = [s for s in RunStatus if not s.is_terminal()]
#: the log the reference streams for a sweep (ferry keeps it as the sweep's main log)
REFERENCE_LOG = "azureml-logs/hyperdrive.txt"


class HyperDriveRun(Run):
    """A hyperparameter sweep's run (type ``hyperdrive``)."""

    RUN_TYPE = RUN_TYPE

    def __init__(
        self,
        experiment: Experiment,
        run_id: str,
        hyperdrive_config: HyperDriveConfig | None = None,
        _record: RunRecord | None = None,
    ) -> None:
        if not isinstance(run_id, str):
            raise ConfigError(f"HyperDriveRun: run_id must be text, not {run_id!r}")
        self._tidied = False
        super().__init__(experiment, run_id, _record=_record)
        record = self._refresh()
        if record.run_type != RUN_TYPE:
            raise ConfigError(
                f"run {run_id} is a {record.run_type} run, not a sweep; use Run.get(ws, id)"
            )
        self._hyperdrive_config = hyperdrive_config
        self._spec = SweepSpec.from_stored(record.definition)

    @classmethod
    def get(cls, workspace: Any, run_id: str) -> HyperDriveRun:
        """The sweep run ``run_id`` of ``workspace``."""
        from ferry.experiment import Experiment

        record = workspace.store.get_run(run_id)
        experiment = Experiment(workspace, record.experiment, _skip_name_validation=True)
        return cls(experiment, run_id, _record=record)

    # the sweep itself ---------------------------------------------------------------------------
    @property
    def hyperdrive_config(self) -> HyperDriveConfig:
        """The sweep's configuration (rebuilt from the run history for a fetched run)."""
        if self._hyperdrive_config is None:
            from ferry.hyperdrive.config import HyperDriveConfig
            from ferry.script_run_config import ScriptRunConfig

            definition = dict(self._spec.child_definition)
            source = str(definition.pop("sourceDirectory", "."))
            definition.pop("submittedBy", None)
            try:
                src = ScriptRunConfig.from_dict({"sourceDirectory": source, **definition})
            except ConfigError:
                src = ScriptRunConfig(source)
            self._hyperdrive_config = HyperDriveConfig._from_stored(self._spec, src)
        return self._hyperdrive_config

    def _refresh(self) -> RunRecord:
        record = super()._refresh()
        if not record.status.is_terminal():
            self._look_after(record)
        elif not self._tidied:  # a sweep that ended (even by a liveness verdict) runs nothing
            self._tidied = True
            for child in self._store.list_runs(RunQuery(parent_id=self.id, statuses=_LIVE)):
                kids.cancel_child(self.workspace, child.id, f"the sweep ended {record.status}")
        return self._record or record

    def _look_after(self, record: RunRecord) -> None:
        """Give a live sweep of this machine a controller again if it has none."""
        if record.host not in (None, socket.gethostname()):
            return
        stale = time.time() - (record.heartbeat_at or record.created_at) > 2 * (
            liveness.heartbeat_interval()
        )
        run_dir = self.run_dir
        if stale and not controller_running(run_dir):
            launch_controller(self.workspace.path, self.workspace.runs_dir, self.id)

    def cancel(self) -> bool:
        """Stop the sweep: its running children are canceled, then the sweep ends Canceled."""
        record = self._store.get_run(self.id)
        if record.status.is_terminal():
            return False
        if record.status != RunStatus.CANCEL_REQUESTED:
            self._store.set_status(self.id, RunStatus.CANCEL_REQUESTED)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "cancel").touch()
        for child in self._store.list_runs(RunQuery(parent_id=self.id)):
            if not child.status.is_terminal():
                kids.cancel_child(self.workspace, child.id, "the sweep was canceled")
        self._record = None
        self._refresh()  # a sweep without a controller gets one, which ends it
        return True

    def fail(self, *args: Any, **kwargs: Any) -> None:
        """Not supported for a sweep (as in the reference): use :meth:`cancel`."""
        raise ConfigError("fail() is not supported for a HyperDriveRun; use cancel()")

    def get_diagnostics(self) -> None:
        raise ConfigError("get_diagnostics() is not supported for a HyperDriveRun")

    # results --------------------------------------------------------------------------------------
    def _children_records(self) -> list[RunRecord]:
        return list(reversed(self._store.list_runs(RunQuery(parent_id=self.id))))

    def get_hyperparameters(self) -> dict[str, str]:
        """``{child id: JSON text of the values it was given}``, as the reference."""
        tags = self._store.get_run(self.id).tags
        return {
            key: str(value)
            for key, value in tags.items()
            if kids.child_index(self.id, key) is not None and value is not None
        }

    def get_children_sorted_by_primary_metric(
        self, top: int = 0, reverse: bool = False, discard_no_metric: bool = False
    ) -> list[dict[str, Any]]:
        """Children by their best primary metric, best first (see the module docstring)."""
        if isinstance(top, bool) or not isinstance(top, int) or top < 0:
            raise ConfigError(f"top must be 0 (all) or a positive whole number, not {top!r}")
        for name, flag in (("reverse", reverse), ("discard_no_metric", discard_no_metric)):
            if not isinstance(flag, bool):
                raise ConfigError(f"{name} must be True or False, not {flag!r}")
        records = self._children_records()
        hyperparameters = self.get_hyperparameters()
        values: dict[str, list[Any]] = {}
        for series in self._store.get_series([r.id for r in records], self._spec.metric):
            values.setdefault(series.run_id, []).extend(series.values)
        maximize = self._spec.maximize
        with_metric: list[dict[str, Any]] = []
        without: list[dict[str, Any]] = []
        for record in records:
            usable = numbers(values.get(record.id, ()))
            best = (max(usable) if maximize else min(usable)) if usable else None
            child = {
                "run_id": record.id,
                "hyperparameters": hyperparameters.get(record.id),
                "best_primary_metric": best,
                "status": record.status.value,
            }
            if best is not None:
                with_metric.append(child)
            elif not discard_no_metric:
                without.append(child)
        with_metric.sort(key=lambda c: c["best_primary_metric"], reverse=maximize != reverse)
        ordered = with_metric + without
        return ordered if top == 0 else ordered[:top]

    def get_best_run_by_primary_metric(
        self,
        include_failed: bool = True,
        include_canceled: bool = True,
        include_resume_from_runs: bool = True,
    ) -> Run | None:
        """The child with the best primary metric (None when no child logged it)."""
        candidates = [
            (self, c) for c in self.get_children_sorted_by_primary_metric(discard_no_metric=True)
        ]
        if include_resume_from_runs:
            for other in self._spec.resume_from:
                run = HyperDriveRun.get(self.workspace, other)
                candidates += [
                    (run, c)
                    for c in run.get_children_sorted_by_primary_metric(discard_no_metric=True)
                ]
        allowed = [
            (owner, c)
            for owner, c in candidates
            if (include_failed or c["status"] != "Failed")
            and (include_canceled or c["status"] != "Canceled")
        ]
        if not allowed:
            return None
        pick = max if self._spec.maximize else min
        owner, best = pick(allowed, key=lambda item: item[1]["best_primary_metric"])
        return Run(owner.experiment, best["run_id"])

    def get_metrics(
        self, name: str | None = None, recursive: bool = False, **_: Any
    ) -> dict[str, Any]:
        """``{child id: its metrics}`` over the sweep's children, in one query."""
        ids = [r.id for r in self._children_records()]
        grouped: dict[str, list[Any]] = {run_id: [] for run_id in ids}
        for series in self._store.get_series(ids, name):
            grouped[series.run_id].append(series)
        return {run_id: shape(series) for run_id, series in grouped.items()}

    # waiting ----------------------------------------------------------------------------------------
    def wait_for_completion(
        self,
        show_output: bool = False,
        wait_post_processing: bool = False,
        raise_on_error: bool = True,
        timeout_seconds: float | None = None,
        out: TextIO | None = None,
    ) -> dict[str, Any]:
        """Wait for the sweep to end; ``show_output`` follows its progress (a line per child
        start, end and termination, and the best so far)."""
        stream = out or sys.stdout
        if show_output:
            stream.write(f"RunId: {self.id}\nWeb View: {self.get_portal_url()}\n\n")
            stream.write(f"Streaming {REFERENCE_LOG}\n{'=' * (len(REFERENCE_LOG) + 10)}\n\n")
            stream.flush()
        for chunk in self.follow_log(timeout_seconds=timeout_seconds):
            if show_output:
                stream.write(chunk)
                stream.flush()
        details = self.get_details()
        if show_output:
            stream.write(
                f"\nExecution Summary\n=================\nRunId: {self.id}\n"
                f"Web View: {self.get_portal_url()}\n"
            )
            if details.get("error"):
                stream.write(f"\nError:\n{json.dumps(details['error'], indent=2)}\n")
            stream.flush()
        if raise_on_error and details["status"] == RunStatus.FAILED.value:
            error = (details.get("error") or {}).get("error", {})
            raise RunFailed(f"sweep {self.id} failed: {error.get('message', '')}", details)
        return details

    def summary(self) -> Mapping[str, Any]:
        """The sweep's settings in the reference's wire shape (what ``runs show`` prints)."""
        return self._spec.to_stored()

    def __repr__(self) -> str:
        return f"HyperDriveRun(experiment={self.experiment.name!r}, id={self.id!r})"
