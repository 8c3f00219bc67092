"""Metrics logged from the driver: ``run.log``, ``log_list``, ``log_row``, ``log_table`` and the
JSON charts, on a submitted or fetched run (in the reference they work there too: after
``wait_for_completion()`` users log summary metrics, upload files, then register a model).

Values are checked by the in-job runtime's own validation (:mod:`ferry.runtime.validation`), so
the driver accepts and refuses exactly what a job does, with the same messages; a refusal is a
:class:`LogTypeError` or :class:`LogValueError` — ferry errors that are also the ``TypeError`` and
``ValueError`` the runtime raises. Each call is written straight to the run history in one
transaction (:meth:`RunStore.apply`), so it is read back at once and may run while the job's own
spool is being ingested: the values of both end up in the history, each series in its order.

Example::

    run = experiment.submit(src)
    run.wait_for_completion()
    run.log("test_accuracy", 0.93)
    run.log_table("roc", {"fpr": [0.0, 0.1], "tpr": [0.0, 0.8]})
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from ferry.errors import LogTypeError, LogValueError
from ferry.run_state import RunState
from ferry.runtime import validation
from ferry.tracking import MetricSeries

T = TypeVar("T")


@contextmanager
def refusals() -> Iterator[None]:
    """Turn the runtime validation's TypeError and ValueError into ferry's errors."""
    try:
        yield
    except (LogTypeError, LogValueError):
        raise
    except TypeError as exc:
        raise LogTypeError(str(exc)) from None
    except ValueError as exc:
        raise LogValueError(str(exc)) from None


def checked(check: Callable[..., T], *args: Any) -> T:
    """``check(*args)`` with its refusals as ferry errors."""
    with refusals():
        return check(*args)


def stored_text(text: str) -> str:
    """``text`` as the run history stores it: a lone surrogate (from a byte that was not
    UTF-8 in a file name) becomes its escape, as spool ingestion does."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


class RunLogging(RunState):
    """The metric half of the run API on the driver side (mixed into :class:`ferry.run.Run`)."""

    def log(self, name: str, value: Any, description: str = "", step: int | None = None) -> None:
        """Log one scalar value; logging a name again makes it a series.

        Lists, tuples, ranges, generators and dicts are refused ("run.log does not support list
        type. Use run.log_list instead"); ``step`` must be a non-negative int.
        """
        if type(name) is not str or not name:  # the runtime's fast path: plain str, float, int
            name = checked(validation.check_metric_name, name)
        kind = type(value)
        if kind is not float and (kind is not int or value.bit_length() > validation.SAFE_INT_BITS):
            value = checked(validation.to_scalar, value, "run.log", name)
        if step is not None:
            step = checked(validation.to_step, step, name)
        self._log_metric(name, validation.SCALAR, value, description, step)

    def log_list(self, name: str, value: Iterable[Any], description: str = "") -> None:
        """Log a list of scalars (numpy arrays are accepted)."""
        name = checked(validation.check_metric_name, name)
        values = checked(validation.to_list, value, "run.log_list", name)
        self._log_metric(name, validation.LIST, values, description)

    def log_row(self, name: str, description: str | None = None, **kwargs: Any) -> None:
        """Log one row of a table; the keyword arguments are its columns (scalar cells)."""
        name = checked(validation.check_metric_name, name)
        row = checked(validation.to_row, kwargs, name)
        self._log_metric(name, validation.ROW, row, description)

    def log_table(self, name: str, value: Mapping[str, Any], description: str = "") -> None:
        """Log a table given as ``{column: [cells]}``; all columns must have the same length."""
        name = checked(validation.check_metric_name, name)
        table = checked(validation.to_table, value, name)
        self._log_metric(name, validation.TABLE, table, description)

    def log_confusion_matrix(self, name: str, value: Any, description: str = "") -> None:
        """Log a confusion matrix (a JSON string or a dict)."""
        self._log_json(name, "confusion_matrix", value, description)

    def log_accuracy_table(self, name: str, value: Any, description: str = "") -> None:
        """Log an accuracy table (a JSON string or a dict)."""
        self._log_json(name, "accuracy_table", value, description)

    def log_residuals(self, name: str, value: Any, description: str = "") -> None:
        """Log residuals (a JSON string or a dict)."""
        self._log_json(name, "residuals", value, description)

    def log_predictions(self, name: str, value: Any, description: str = "") -> None:
        """Log predictions (a JSON string or a dict)."""
        self._log_json(name, "predictions", value, description)

    def _log_json(self, name: Any, kind: str, value: Any, description: Any) -> None:
        name = checked(validation.check_metric_name, name)
        parsed = checked(validation.to_json_object, value, kind, name)
        self._log_metric(name, kind, parsed, description)

    def _log_metric(
        self, name: str, kind: str, value: Any, description: Any, step: int | None = None
    ) -> None:
        """Keep one checked value. The driver writes it to the history at once; an
        interactive run (:class:`ferry.interactive.InteractiveRun`) batches it."""
        series = MetricSeries(
            self.id,
            stored_text(name),
            kind,
            [value],
            None if step is None else [step],
            [time.time()],
            stored_text(validation.as_text(description)),
        )
        self._apply([series])

    def flush(self, timeout_seconds: int = 300) -> None:
        """Write what was logged now: a no-op here, the driver writes each call at once (an
        interactive run writes its batch)."""
        self._flush()

    def _flush(self) -> None:
        """Make what this handle logged visible to readers (the driver writes at once)."""
