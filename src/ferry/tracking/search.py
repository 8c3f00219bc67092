"""Searching runs: filters on metrics, tags, properties and attributes, sorted, one page at a time.

:class:`RunSearch` is plain data (what MLflow's ``search_runs`` and ``ferry runs list`` ask
for); :meth:`ferry.tracking.base.RunStore.search_runs` answers it. The SQL store turns it into
one query over ``latest_metrics`` (each run's last value of each metric, kept up to date by
ingestion), so a filter and a sort on a metric over 100,000 runs use an index instead of
decoding series; other stores use :func:`search_in_memory`, the same rules in Python.

A metric clause compares the run's latest numeric value (greatest step, then latest time, as
MLflow does); a run without that metric never matches, and sorts last. Properties are what
MLflow calls params.

Example::

    page = store.search_runs(RunSearch(
        experiments=("diabetes",),
        clauses=(Clause("metric", "mse", "<", 3000.0), Clause("tag", "team", "=", "a")),
        order_by=(OrderBy("metric", "mse", ascending=True),),
        limit=100,
    ))
    page.runs[0].id, page.next_offset
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ferry.errors import ConfigError
from ferry.tracking.base import MetricSeries, RunRecord

#: what a clause may look at
KINDS = ("metric", "tag", "property", "attribute")
#: comparison operators; LIKE/ILIKE use SQL's % and _ wildcards
OPERATORS = ("=", "!=", ">", ">=", "<", "<=", "LIKE", "ILIKE", "IN", "NOT IN")
#: run attributes a clause or a sort may name
ATTRIBUTES = (
    "id",
    "status",
    "display_name",
    "created_at",
    "start_time",
    "end_time",
    "target",
    "experiment",
    "parent_id",
    "run_type",
    "duration",
)
MAX_PAGE = 50_000
#: longest metric name kept in latest_metrics (its column's width)
LATEST_NAME = 500
#: (step, time, value): the order that makes a value a metric's latest (MLflow's rule)
Latest = tuple[int, float, float]


def latest_value(series: MetricSeries) -> Latest | None:
    """The series' last numeric scalar value by (step, time), or None (NaN, text, lists …)."""
    if series.type != "scalar" or len(series.name) > LATEST_NAME:
        return None
    best: Latest | None = None
    steps = series.steps or [None] * len(series.values)
    for value, step, at in zip(series.values, steps, series.ts, strict=False):
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        try:
            number = float(value)
        except OverflowError:  # an int beyond a float's range
            continue
        if math.isnan(number):  # SQLite stores NaN as NULL: it cannot be sorted on
            continue
        candidate = (int(step or 0), float(at), number)
        if best is None or candidate[:2] >= best[:2]:
            best = candidate
    return best


def latest_of_series(series: Sequence[MetricSeries]) -> dict[str, dict[str, float]]:
    """{run id: {metric: latest value}} folded from series (stores without latest_metrics)."""
    best: dict[tuple[str, str], Latest] = {}
    for one in series:
        found = latest_value(one)
        key = (one.run_id, one.name)
        if found is not None and (key not in best or found[:2] >= best[key][:2]):
            best[key] = found
    out: dict[str, dict[str, float]] = {}
    for (run_id, name), (_step, _at, value) in best.items():
        out.setdefault(run_id, {})[name] = value
    return out


@dataclass(frozen=True)
class Clause:
    """``<kind>.<key> <op> <value>``; for IN / NOT IN the value is a tuple."""

    kind: str
    key: str
    op: str
    value: Any


@dataclass(frozen=True)
class OrderBy:
    kind: str
    key: str
    ascending: bool = True


@dataclass(frozen=True)
class RunSearch:
    """One page of runs of ``experiments`` (names) matching every clause (AND)."""

    experiments: tuple[str, ...]
    clauses: tuple[Clause, ...] = ()
    order_by: tuple[OrderBy, ...] = ()
    limit: int = 1000
    offset: int = 0
    top_level_only: bool = False


@dataclass(frozen=True)
class RunPage:
    """The runs found, and the offset of the next page (None on the last one)."""

    runs: list[RunRecord]
    next_offset: int | None = None
    #: each run's latest metric values ({run id: {name: value}}), for the runs of this page
    latest: dict[str, dict[str, float]] = field(default_factory=dict)


def check(search: RunSearch) -> RunSearch:
    """Refuse what no store can answer, with the reason (before any query runs)."""
    if not 1 <= search.limit <= MAX_PAGE:
        raise ConfigError(f"a search page holds 1 to {MAX_PAGE} runs, not {search.limit}")
    if search.offset < 0:
        raise ConfigError(f"a search offset must not be negative, got {search.offset}")
    for clause in search.clauses:
        if clause.kind not in KINDS:
            raise ConfigError(f"cannot search on {clause.kind!r}; one of {', '.join(KINDS)}")
        if clause.op not in OPERATORS:
            raise ConfigError(f"unknown comparison {clause.op!r}; one of {', '.join(OPERATORS)}")
        if clause.kind == "attribute" and clause.key not in ATTRIBUTES:
            raise ConfigError(
                f"runs have no attribute {clause.key!r}; one of {', '.join(ATTRIBUTES)}"
            )
        _check_value(clause)
    for order in search.order_by:
        if order.kind not in KINDS:
            raise ConfigError(f"cannot sort on {order.kind!r}; one of {', '.join(KINDS)}")
        if order.kind == "attribute" and order.key not in ATTRIBUTES:
            raise ConfigError(f"runs have no attribute {order.key!r} to sort on")
    return search


_NUMERIC_ATTRIBUTES = ("created_at", "start_time", "end_time", "duration")


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


def _check_value(clause: Clause) -> None:
    """The clause's value has the type its field holds (numbers for metrics and times, text
    for the rest); a list for IN and NOT IN; LIKE on text only."""
    numeric = clause.kind == "metric" or (
        clause.key in _NUMERIC_ATTRIBUTES and (clause.kind == "attribute")
    )
    what = f"{clause.kind} {clause.key!r}"
    if clause.op in ("IN", "NOT IN"):
        if not isinstance(clause.value, tuple | list):
            raise ConfigError(f"{clause.op} needs a list of values, got {clause.value!r}")
        values = list(clause.value)
    else:
        values = [clause.value]
    if numeric and clause.op in ("LIKE", "ILIKE"):
        raise ConfigError(f"{what} is a number: compare it with =, !=, <, <=, > or >=")
    for value in values:
        if numeric and not _is_number(value):
            raise ConfigError(f"{what} is compared with a number, got {value!r}")
        if not numeric and not isinstance(value, str):
            raise ConfigError(f"{what} is compared with text, got {value!r}")


# the same rules in Python (stores without SQL) ------------------------------------------------
def _compare(op: str, have: Any, want: Any) -> bool:
    if op in ("IN", "NOT IN"):
        found = have in tuple(want)
        return found if op == "IN" else not found
    if have is None:
        return False
    try:
        if op == "=":
            return bool(have == want)
        if op == "!=":
            return bool(have != want)
        if op == ">":
            return bool(have > want)
        if op == ">=":
            return bool(have >= want)
        if op == "<":
            return bool(have < want)
        if op == "<=":
            return bool(have <= want)
    except TypeError:
        return False
    return False


def attribute(record: RunRecord, key: str) -> Any:
    if key == "duration":  # seconds from start to end; None until the run has both
        if record.start_time is None or record.end_time is None:
            return None
        return record.end_time - record.start_time
    value = getattr(record, key)
    return value.value if key == "status" else value


def value_of(record: RunRecord, latest: dict[str, float], kind: str, key: str) -> Any:
    if kind == "metric":
        return latest.get(key)
    if kind == "tag":
        return record.tags.get(key) if key in record.tags else None
    if kind == "property":
        return record.properties.get(key)
    return attribute(record, key)


def search_in_memory(
    search: RunSearch,
    records: Sequence[RunRecord],
    latest_of: Callable[[Sequence[str]], dict[str, dict[str, float]]],
) -> RunPage:
    """Answer ``search`` over ``records`` (every run of its experiments); ``latest_of`` gives
    the latest metric values of runs."""
    check(search)
    latest = latest_of([r.id for r in records])
    found = []
    for record in records:
        values = latest.get(record.id, {})
        if search.top_level_only and record.parent_id:
            continue
        if all(
            _matches(clause, value_of(record, values, clause.kind, clause.key))
            for clause in search.clauses
        ):
            found.append(record)
    found.sort(key=lambda r: (-r.created_at, _reverse(r.id)))
    for order in reversed(search.order_by):
        present = [r for r in found if _sortable(value_of(r, latest.get(r.id, {}), *_ko(order)))]
        absent = [r for r in found if r not in present]
        present.sort(
            key=lambda r: value_of(r, latest.get(r.id, {}), *_ko(order)),
            reverse=not order.ascending,
        )
        found = present + absent  # runs without the value sort last, either way
    page = found[search.offset : search.offset + search.limit]
    more = search.offset + search.limit < len(found)
    return RunPage(
        page,
        search.offset + search.limit if more else None,
        {r.id: latest.get(r.id, {}) for r in page},
    )


def _ko(order: OrderBy) -> tuple[str, str]:
    return order.kind, order.key


def _sortable(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _reverse(text: str) -> tuple[int, ...]:
    return tuple(-ord(ch) for ch in text)


def _matches(clause: Clause, have: Any) -> bool:
    if clause.op in ("LIKE", "ILIKE") and have is not None:
        return fnmatch.fnmatchcase(
            str(have).lower() if clause.op == "ILIKE" else str(have),
            _glob(str(clause.value).lower() if clause.op == "ILIKE" else str(clause.value)),
        )
    return _compare(clause.op, have, clause.value)


def _glob(like: str) -> str:
    """A SQL LIKE pattern as an fnmatch pattern (brackets escaped)."""
    out = []
    for ch in like:
        if ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        elif ch in "[]*?":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)
