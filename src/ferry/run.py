"""Run: the handle on one run in the history, and ``Run.get_context()`` for training scripts.

The handle is the reference's driver-side ``Run``: it reads the run (status, details, metrics,
files, logs) and writes to it as the reference allows from the driver — metrics, files, tags,
properties, names, and the end status (``complete()``, ``fail()``). Its parts live in modules of
one noun each: :mod:`ferry.run_state` (identity, status, names, details), :mod:`ferry.run_logging`
(metrics), :mod:`ferry.run_files` (files), :mod:`ferry.run_logs` (waiting, logs) and
:mod:`ferry.run_source` (snapshot, environment). An interactive run (``start_logging``) is the
subclass :class:`ferry.interactive.InteractiveRun`.

Example::

    run = experiment.submit(src)
    run.wait_for_completion(show_output=True)
    run.get_metrics()            # {"mse": [..], "alpha": 0.4}
    run.log("test_mse", 3012.5)  # from the driver, after the job
    run.upload_file("outputs/report.html", "report.html")
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry.errors import ConfigError, InvalidTransition
from ferry.metrics import shape
from ferry.run_files import RunFiles
from ferry.run_logs import RunLogs
from ferry.run_models import RunModels
from ferry.run_source import RunSource
from ferry.run_state import run_type_matches
from ferry.status import RunStatus, can_transition, parse_status
from ferry.supervisor import CANCEL_MARKER
from ferry.targets.base import LOG_NAME
from ferry.tracking import RunQuery, RunRecord

if TYPE_CHECKING:
    from ferry.experiment import Experiment
    from ferry.workspace import Workspace


class Run(RunFiles, RunLogs, RunSource, RunModels):
    """One run of an experiment: status, details, logs, metrics, files, tags and properties.

    Example::

        run = Run.get(ws, "diabetes_1718000000_ab12cd34")
        run.log("test_mse", 3012.5)
        run.tag("candidate")
        run.display_name = "ridge, alpha 0.5"
    """

    # construction -------------------------------------------------------------------------
    @classmethod
    def get(cls, workspace: Workspace, run_id: str) -> Run:
        from ferry.experiment import Experiment

        record = workspace.store.get_run(run_id)
        experiment = Experiment(workspace, record.experiment, _skip_name_validation=True)
        return typed_run(experiment, record) if cls is Run else cls(experiment, run_id, record)

    @classmethod
    def list(
        cls,
        experiment: Experiment,
        type: str | None = None,
        tags: Any = None,
        properties: Any = None,
        status: str | None = None,
        include_children: bool = False,
    ) -> Iterator[Run]:
        """Runs of ``experiment``, newest first, filtered as the reference (``type`` by the
        reference's name or ferry's, ``tags``/``properties`` as ``"key"`` or ``{key: value}``)."""
        return experiment.get_runs(
            type=type,
            tags=tags,
            properties=properties,
            status=status,
            include_children=include_children,
        )

    @staticmethod
    def get_context(
        allow_offline: bool = True, used_for_context_manager: bool = False, **kwargs: Any
    ) -> Any:
        """The current run inside a training script (an offline run outside ferry)."""
        try:
            import ferry_runtime as runtime  # type: ignore[import-not-found]  # a job's copy
        except ImportError:
            from ferry import runtime
        return runtime.get_context(
            allow_offline=allow_offline, used_for_context_manager=used_for_context_manager
        )

    # relations, tags and properties ---------------------------------------------------------
    @property
    def parent(self) -> Run | None:
        parent_id = self._refresh().parent_id
        return Run(self.experiment, parent_id) if parent_id else None

    @property
    def tags(self) -> dict[str, str | None]:
        return dict(self._refresh().tags)

    @property
    def properties(self) -> dict[str, str]:
        return dict(self._refresh().properties)

    def get_tags(self) -> dict[str, str | None]:
        self._record = None
        return self.tags

    def get_properties(self) -> dict[str, str]:
        self._record = None
        return self.properties

    def tag(self, key: str, value: Any = None) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any] | str) -> None:
        tags = {tags: None} if isinstance(tags, str) else tags
        if not isinstance(tags, Mapping):
            raise ConfigError(f"set_tags expects a dict of tags or one tag name, got {tags!r}")
        self._store.set_tags(
            self.id, {_key(k): None if v is None else str(v) for k, v in tags.items()}
        )
        self._record = None

    def remove_tags(self, tags: Iterable[str]) -> None:
        self._store.remove_tags(self.id, [tags] if isinstance(tags, str) else list(tags))
        self._record = None

    def add_properties(self, properties: Mapping[str, Any]) -> None:
        if not isinstance(properties, Mapping):
            raise ConfigError(f"add_properties expects a dict, got {properties!r}")
        self._store.add_properties(
            self.id, {_key(k, "property"): str(v) for k, v in properties.items()}
        )
        self._record = None

    def get_children(
        self,
        recursive: bool = False,
        tags: Any = None,
        properties: Any = None,
        type: str | None = None,
        status: str | None = None,
        _rehydrate_runs: bool = True,
    ) -> Iterator[Run]:
        """Child runs, oldest first, filtered as :meth:`list`; ``recursive`` adds theirs."""
        from ferry.experiment import _filter

        query = RunQuery(
            parent_id=self.id,
            tags=_filter(tags),
            properties=_filter(properties),
            statuses=[parse_status(status)] if status else None,
        )
        for record in reversed(self._store.list_runs(query)):
            child = Run(self.experiment, record.id, _record=record)
            if run_type_matches(record.run_type, type):
                yield child
            if recursive:
                yield from child.get_children(
                    recursive=True, tags=tags, properties=properties, type=type, status=status
                )

    # metrics ----------------------------------------------------------------------------------
    def get_metrics(
        self, name: str | None = None, recursive: bool = False, **_: Any
    ) -> dict[str, Any]:
        self._flush()
        if not recursive:
            return shape(self._store.get_series([self.id], name))
        ids = [self.id, *(r.id for r in self.get_children(recursive=True))]
        series = self._store.get_series(ids, name)
        return {run_id: shape(s for s in series if s.run_id == run_id) for run_id in ids}

    # control ------------------------------------------------------------------------------
    def cancel(self) -> bool:
        """Ask the run to stop; returns False when it had already ended."""
        rec = self._store.get_run(self.id)
        if rec.status.is_terminal():
            return False
        if rec.status in (RunStatus.NOT_STARTED,) and not rec.supervisor_pid:
            self._store.set_status(self.id, RunStatus.CANCELED)
            return True
        self._store.set_status(self.id, RunStatus.CANCEL_REQUESTED)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / CANCEL_MARKER).touch()
        self._record = None
        return True

    def complete(self, _set_status: bool = True) -> None:
        """Mark the run Completed, as the reference does from the driver."""
        if _set_status:
            self._end(RunStatus.COMPLETED, None)

    def fail(
        self, error_details: Any = None, error_code: Any = None, _set_status: bool = True
    ) -> None:
        """Mark the run Failed with the reference's error shape. The run stays Failed whatever
        its job does next: the supervisor stops the job and keeps its outputs."""
        if _set_status:
            message = (
                str(error_details)
                if error_details is not None
                else "the run was failed by run.fail()"
            )
            code = str(error_code) if error_code else "UserError"
            self._end(RunStatus.FAILED, {"error": {"code": code, "message": message}})

    def _end(self, status: RunStatus, error: dict[str, Any] | None) -> None:
        """Compare-and-set from the live status the run is in to ``status``: a run that ended
        meanwhile is never changed (the store refuses, and this says so)."""
        verb = "complete" if status == RunStatus.COMPLETED else "fail"
        for _ in range(5):  # the run may move on (Running → Finalizing) between read and write
            current = self._store.get_run(self.id).status
            if current.is_terminal():
                raise ConfigError(
                    f"run {self.id} has already ended ({current.value}); cannot {verb} it"
                )
            if not can_transition(current, status):
                raise ConfigError(
                    f"run {self.id} is {current.value}: it cannot be marked {status.value} "
                    "from there; use run.cancel() or run.fail()"
                )
            try:
                self._store.set_status(self.id, status, error=error, expected=current)
            except InvalidTransition:
                continue
            self._record = None
            return
        raise ConfigError(f"run {self.id} kept changing status; {verb}() did not take effect")

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        """A fetched or submitted run used as a context manager is left as it is (its status
        is its job's); an interactive run ends here."""

    # display ----------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"Run(experiment={self.experiment.name!r}, id={self.id!r})"

    def _repr_html_(self) -> str:
        """A one-row table for Jupyter: experiment, id, type, status and links to the run's
        folder and its log (file links: the workspace is on this machine)."""
        log = self._log_files().get(LOG_NAME)
        cells = {
            "Experiment": html.escape(self.experiment.name),
            "Id": html.escape(self.id),
            "Type": html.escape(self.type),
            "Status": html.escape(self.get_status()),
            "Details Page": _link(self.get_portal_url(), "Link to the run's folder"),
            "Log": _link(Path(log).as_uri(), "std_log.txt") if log else "(none yet)",
        }
        head = "".join(f"<th>{name}</th>" for name in cells)
        row = "".join(f"<td>{value}</td>" for value in cells.values())
        return f"<table style='width:100%'><tr>{head}</tr><tr>{row}</tr></table>"


def _link(url: str, text: str) -> str:
    return f'<a href="{html.escape(url, quote=True)}" target="_blank" rel="noopener">{text}</a>'


def _key(key: Any, what: str = "tag") -> str:
    if not isinstance(key, str) or not key:
        raise ConfigError(f"{what} names must be non-empty strings, got {key!r}")
    return key


def typed_run(experiment: Experiment, record: RunRecord) -> Run:
    """The handle of the run's kind, as the reference returns it (a sweep's is a
    ``HyperDriveRun`` with its results methods)."""
    if record.run_type == "hyperdrive":
        from ferry.hyperdrive.run import HyperDriveRun

        return HyperDriveRun(experiment, record.id, _record=record)
    return Run(experiment, record.id, _record=record)
