"""The run API a training script uses: ``Run.get_context()`` and what the returned run can do.

:class:`Run` holds the whole API and its validation; where the records go is up to a subclass:
:class:`~.context.SubmittedRun` appends them to the spool of a submitted job,
:class:`~.offline.OfflineRun` keeps them in memory and prints the reference's ``Attempted to …``
lines. Both answer ``get_metrics``, ``get_children`` and ``get_tags`` from their records.
"""

from __future__ import annotations

import abc
import os
import time
import warnings
from types import TracebackType
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Type

from . import history, validation
from .artifacts import ArtifactsMixin
from .children import ChildrenMixin
from .datasets import DataMixin
from .encoding import show
from .labels import LabelsMixin
from .validation import SAFE_INT_BITS, as_text, check_metric_name

Record = Dict[str, Any]
TERMINAL = ("Completed", "Failed", "Canceled")


class JobWorkspace:
    """The workspace as a job sees it: a name, and the way ``Dataset.get_by_id(ws, id)`` and
    ``Model.get_model_path(…, _workspace=ws)`` find the run's own inputs and models."""

    _ferry_job = True

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Workspace.create(name={self.name!r}) (inside a job)"


class JobExperiment:
    """The experiment a run belongs to; inside a job only its name is known.

    Example::

        run.experiment.name  # "diabetes"
    """

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def workspace(self) -> JobWorkspace:
        """The reference's ``run.experiment.workspace``, for ``Dataset.get_by_id(ws, id=…)``."""
        return JobWorkspace(os.environ.get("FERRY_WORKSPACE_NAME") or "workspace")

    def __repr__(self) -> str:
        return f"Experiment(name={self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobExperiment) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


class JobRun(ArtifactsMixin, ChildrenMixin, LabelsMixin, DataMixin, abc.ABC):
    """A run as seen from inside a training script (the reference's ``azureml.core.Run``).

    Get one with :meth:`Run.get_context`; do not construct it.

    Example::

        run = Run.get_context()
        run.log("loss", 0.3, step=1)
        run.log_row("roc", fpr=0.1, tpr=0.7)
        with run.child_run("fold-1") as child:
            child.log("acc", 0.9)
        run.get_metrics()  # {"loss": 0.3, "roc": {"fpr": 0.1, "tpr": 0.7}}
    """

    #: True for :class:`~.offline.OfflineRun`: print the reference's offline lines, copy no files
    _offline = False

    def __init__(
        self,
        run_id: str,
        experiment: JobExperiment,
        parent: Optional[JobRun],
        name: Optional[str],
        emit: Callable[[Record], None],
        family: Optional[Dict[str, JobRun]] = None,
    ) -> None:
        self._id = run_id
        self._experiment = experiment
        self._parent = parent
        self._name = name
        self._emit = emit
        self._tags: Dict[str, Optional[str]] = {}
        self._properties: Dict[str, str] = {}
        self._status = "Running"
        #: the status belongs to the supervisor (the job's own run and its sweep parent)
        self._owned_by_supervisor = False
        #: every run object of this tree in this process, by id (shared with the children)
        self._family: Dict[str, JobRun] = {} if family is None else family
        self._family[run_id] = self

    # -- where records go (the subclass contract) -------------------------------------------

    @abc.abstractmethod
    def _store_file(self, name: str, source: Any) -> Optional[str]:
        """Keep the file ``source`` as artifact ``name``; return its spool-relative path."""

    @abc.abstractmethod
    def _records(self) -> List[Record]:
        """Every record of this run tree so far (flushing first where records are buffered)."""

    @abc.abstractmethod
    def _spawn(self, run_id: str, name: Optional[str], parent: JobRun) -> JobRun:
        """A new run object of the same kind, sharing this one's sink and family."""

    @abc.abstractmethod
    def _new_run_id(self, name: Optional[str]) -> str:
        """An id for a new child run."""

    # -- identity -----------------------------------------------------------------------------

    @staticmethod
    def get_context(
        allow_offline: bool = True, used_for_context_manager: bool = False, **kwargs: Any
    ) -> JobRun:
        """The run of the current job, or an offline run when the script runs by hand."""
        from .context import get_context

        return get_context(allow_offline, used_for_context_manager)

    @property
    def id(self) -> str:
        """The run id, e.g. ``diabetes_1718000000_ab12cd34``."""
        return self._id

    @property
    def experiment(self) -> JobExperiment:
        """The experiment (an object with ``.name``)."""
        return self._experiment

    @property
    def parent(self) -> Optional[JobRun]:
        """The parent run, or None for a top-level run."""
        return self._parent

    @property
    def name(self) -> str:
        """The display name: the name given to ``child_run``, else the run id."""
        return self._name if self._name else self._id

    @property
    def display_name(self) -> str:
        """Same as :attr:`name`."""
        return self.name

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(Experiment: {self._experiment.name}, Id: {self._id}, "
            f"Status: {self._status})"
        )

    # -- metrics ------------------------------------------------------------------------------

    def log(self, name: str, value: Any, description: str = "", step: Optional[int] = None) -> None:
        """Log one scalar value; logging a name again makes it a series.

        Lists, tuples, ranges, generators and dicts raise ``TypeError`` ("run.log does not
        support list type. Use run.log_list instead"); ``step`` must be a non-negative int.
        """
        if type(name) is not str or not name:
            name = check_metric_name(name)
        kind = type(value)
        if kind is not float and (kind is not int or value.bit_length() > SAFE_INT_BITS):
            value = validation.to_scalar(value, "run.log", name)
        if step is not None:
            step = validation.to_step(step, name)
        if self._offline:
            show(f"Attempted to log scalar metric {name}:\n{value}")
        self._emit(
            {
                "k": "metric",
                "run": self._id,
                "ts": time.time(),
                "name": name,
                "type": "scalar",
                "value": value,
                "step": step,
                "desc": description if type(description) is str else as_text(description),
            }
        )

    def log_list(self, name: str, value: Iterable[Any], description: str = "") -> None:
        """Log a list of scalars (numpy arrays are accepted)."""
        self._metric(name, "list", validation.to_list(value, metric=name), description)

    def log_row(self, name: str, description: Optional[str] = None, **kwargs: Any) -> None:
        """Log one row of a table; the keyword arguments are its columns (scalar cells)."""
        self._metric(name, "row", validation.to_row(kwargs, name), description)

    def log_table(self, name: str, value: Mapping[str, Any], description: str = "") -> None:
        """Log a table given as ``{column: [cells]}``; all columns must have the same length."""
        self._metric(name, "table", validation.to_table(value, name), description)

    def log_confusion_matrix(self, name: str, value: Any, description: str = "") -> None:
        """Log a confusion matrix (a JSON string or a dict)."""
        self._metric(
            name,
            "confusion_matrix",
            validation.to_json_object(value, "confusion_matrix", name),
            description,
        )

    def log_accuracy_table(self, name: str, value: Any, description: str = "") -> None:
        """Log an accuracy table (a JSON string or a dict)."""
        self._metric(
            name,
            "accuracy_table",
            validation.to_json_object(value, "accuracy_table", name),
            description,
        )

    def log_residuals(self, name: str, value: Any, description: str = "") -> None:
        """Log residuals (a JSON string or a dict)."""
        self._metric(
            name, "residuals", validation.to_json_object(value, "residuals", name), description
        )

    def log_predictions(self, name: str, value: Any, description: str = "") -> None:
        """Log predictions (a JSON string or a dict)."""
        self._metric(
            name, "predictions", validation.to_json_object(value, "predictions", name), description
        )

    def _metric(
        self, name: Any, kind: str, value: Any, description: Any, shown: Any = None
    ) -> None:
        name = check_metric_name(name)
        if self._offline:
            show(f"Attempted to log {kind} metric {name}:\n{value if shown is None else shown}")
        self._emit(
            {
                "k": "metric",
                "run": self._id,
                "ts": time.time(),
                "name": name,
                "type": kind,
                "value": value,
                "step": None,
                "desc": as_text(description),
            }
        )

    def get_metrics(
        self,
        name: Optional[str] = None,
        recursive: bool = False,
        run_type: Optional[str] = None,
        populate: bool = False,
    ) -> Dict[str, Any]:
        """The metrics logged so far, in the reference's shapes (see :mod:`.history`).

        With ``recursive=True``: ``{run_id: {name: value}}`` over this run and its descendants.
        Inside a job this flushes, then reads every process's spool file.
        """
        records = self._records()
        if not recursive:
            return history.metric_values((r for r in records if r.get("run") == self._id), name)
        runs = history.fold(records)
        ids = [self._id, *history.descendants(runs, self._id)]
        return {
            run_id: history.metric_values(runs[run_id].metrics, name) if run_id in runs else {}
            for run_id in ids
        }

    # -- status -------------------------------------------------------------------------------

    def get_status(self) -> str:
        """``Running`` for the job's run; a child's own status once it has ended."""
        return self._status

    def get_details(self) -> Dict[str, Any]:
        """A small subset of the reference's details: id, status, properties and tags."""
        return {
            "runId": self._id,
            "status": self._status,
            "properties": dict(self._properties),
            "tags": dict(self._tags),
        }

    def complete(self, _set_status: bool = True) -> None:
        """Mark a child run Completed (the job's own run only warns: its status is the
        supervisor's, set when the script exits)."""
        self._end("Completed", None, "complete")

    def fail(self, error_details: Any = None, error_code: Optional[str] = None) -> None:
        """Mark a child run Failed, with ``error_details`` (text or exception) as its error."""
        error = _describe(error_details)
        if error_code:
            error = f"{error_code}: {error}" if error else str(error_code)
        self._end("Failed", error, "fail")

    def cancel(self) -> None:
        """Mark a child run Canceled."""
        self._end("Canceled", None, "cancel")

    def _end(self, status: str, error: Optional[str], verb: str) -> None:
        if self._owned_by_supervisor:
            warnings.warn(
                f"run.{verb}() does not change the status of the job's own run {self._id}; "
                "ferry sets it when the script exits",
                stacklevel=3,
            )
            return
        if self._status in TERMINAL:
            warnings.warn(f"run {self._id} has already ended ({self._status})", stacklevel=3)
            return
        self._status = status
        self._emit(
            {"k": "status", "run": self._id, "ts": time.time(), "status": status, "error": error}
        )

    def flush(self, timeout_seconds: int = 300) -> None:
        """Write buffered records now (a no-op offline)."""

    def __enter__(self) -> JobRun:
        if self._offline:
            show(f"[START] Run {self._id} context")
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if self._owned_by_supervisor:
            self.flush()
        elif self._status not in TERMINAL:
            if exc is None:
                self.complete()
            elif isinstance(exc, KeyboardInterrupt):
                self.cancel()
            else:
                self.fail(_describe(exc))
        if self._offline:
            show(f"[STOP] Run {self._id} context")


def _describe(error: Any) -> Optional[str]:
    if error is None:
        return None
    if isinstance(error, BaseException):
        import traceback

        return "".join(traceback.format_exception_only(type(error), error)).strip()
    return error if isinstance(error, str) else str(error)
