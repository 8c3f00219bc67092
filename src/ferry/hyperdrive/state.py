"""What a sweep knows of its children, and the decisions made from it (pure).

The controller turns the run history into :class:`Child` values (status, values sampled,
primary-metric values logged) and asks these functions what to do: which child is best so far,
whether the sweep should stop early because it cannot produce a result (:func:`health`), and
how it ends (:func:`outcome`). Nothing here reads or writes anything.

Two early stops spare a sweep that cannot work from burning all its trials, each with a message
naming the fix: the first ``k`` children to end all *failed* (the script is broken: the first
one's error is quoted), or ``k`` children *completed* and none logged the primary metric (a
misspelt ``primary_metric_name``: the names the children did log are listed).

Example::

    best_child([Child(0, "HD_x_0", {}, RunStatus.COMPLETED, (0.7, 0.9))], maximize=True).run_id
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ferry.hyperdrive.termination import best_of
from ferry.status import RunStatus

#: how many ended children decide that a sweep cannot work (fewer when the sweep is smaller)
EARLY_STOP_AFTER = 3


@dataclass(frozen=True)
class Child:
    """One child run as the controller sees it."""

    index: int
    run_id: str
    params: Mapping[str, Any]
    status: RunStatus
    values: tuple[float, ...] = ()
    error: str | None = None
    #: the intervals the policy has already judged
    seen: int = 0

    @property
    def ended(self) -> bool:
        return self.status.is_terminal()

    def best(self, maximize: bool) -> float | None:
        return best_of(self.values, maximize) if self.values else None


def numbers(values: Iterable[Any]) -> tuple[float, ...]:
    """The primary metric's usable values: finite numbers (text, booleans and NaN are left out)."""
    return tuple(
        float(v)
        for v in values
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    )


def best_child(children: Iterable[Child], maximize: bool) -> Child | None:
    """The child with the best value of the primary metric (the first one on a tie)."""
    found: Child | None = None
    for child in sorted(children, key=lambda c: c.index):
        value = child.best(maximize)
        if value is None:
            continue
        current = found.best(maximize) if found is not None else None
        if current is None or (value > current if maximize else value < current):
            found = child
    return found


@dataclass(frozen=True)
class Outcome:
    """How a sweep ends: its status and, when it did not produce a result, why."""

    status: RunStatus
    message: str = ""
    code: str = ""

    def error(self) -> dict[str, Any] | None:
        if not self.message:
            return None
        return {"error": {"code": self.code or "SweepFailed", "message": self.message}}


def health(
    children: Sequence[Child], metric: str, total: int, logged_names: Sequence[str] = ()
) -> Outcome | None:
    """An early stop when the sweep cannot produce a result, else None."""
    k = max(1, min(EARLY_STOP_AFTER, total))
    ended = [c for c in sorted(children, key=lambda c: c.index) if c.ended]
    if any(c.values for c in children):
        return None
    first = ended[:k]
    if len(first) == k and all(c.status == RunStatus.FAILED for c in first):
        why = first[0].error or "see its log"
        return Outcome(
            RunStatus.FAILED,
            f"the first {k} child run(s) failed, so the sweep was stopped; {first[0].run_id}: "
            f"{why}",
            "ChildRunsFailed",
        )
    completed = [c for c in ended if c.status == RunStatus.COMPLETED]
    if len(completed) >= k:
        return Outcome(
            RunStatus.FAILED, no_metric_message(metric, logged_names, k), "NoPrimaryMetric"
        )
    return None


def no_metric_message(metric: str, logged_names: Sequence[str], count: int) -> str:
    logged = ", ".join(repr(n) for n in logged_names[:20]) or "nothing"
    return (
        f"no child run logged the primary metric {metric!r} ({count} ended; they logged "
        f"{logged}), so no best run can be chosen: make primary_metric_name match the name "
        f"the script logs, as in run.log({metric!r}, value)"
    )


def outcome(children: Sequence[Child], metric: str, logged_names: Sequence[str] = ()) -> Outcome:
    """How a sweep whose children have all ended ends."""
    if any(c.values for c in children):
        return Outcome(RunStatus.COMPLETED)
    if not children:
        return Outcome(RunStatus.FAILED, "the sweep started no child run", "NoChildRuns")
    failed = [c for c in children if c.status == RunStatus.FAILED]
    if len(failed) == len(children):
        first = min(failed, key=lambda c: c.index)
        return Outcome(
            RunStatus.FAILED,
            f"every child run failed; {first.run_id}: {first.error or 'see its log'}",
            "ChildRunsFailed",
        )
    return Outcome(
        RunStatus.FAILED, no_metric_message(metric, logged_names, len(children)), "NoPrimaryMetric"
    )


def error_message(error: Mapping[str, Any] | None) -> str | None:
    """The message of a run's stored error."""
    if not error:
        return None
    inner = error.get("error")
    if isinstance(inner, Mapping):
        return str(inner.get("message") or "") or None
    return None
