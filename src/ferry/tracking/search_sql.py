"""A :class:`~ferry.tracking.search.RunSearch` as SQL (SQLite and PostgreSQL).

Each metric clause joins ``latest_metrics`` on ``(run_id, name)`` and compares its indexed
value; tag and property clauses join their tables on their primary keys; a sort on a metric is
an outer join, its runs without the metric last. One more row than the page is fetched to know
whether a next page exists. The page's ids are found, sorted and cut over narrow rows in a
subquery joined to ``runs``, so the page's rows come back in one query; its tags, properties
and latest metrics follow, one query each, the ids as one array parameter on PostgreSQL
(:func:`among`) — a search is four round trips whatever the page size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

from ferry.tracking import schema as t
from ferry.tracking.base import RunRecord
from ferry.tracking.search import Clause, RunPage, RunSearch, check

Records = Callable[[Connection, Sequence[sa.Row[Any]]], list[RunRecord]]


def _condition(column: Any, clause: Clause) -> Any:
    op, value = clause.op, clause.value
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == ">":
        return column > value
    if op == ">=":
        return column >= value
    if op == "<":
        return column < value
    if op == "<=":
        return column <= value
    if op == "LIKE":
        return column.like(value)
    if op == "ILIKE":
        return sa.func.lower(column).like(sa.func.lower(value))
    if op == "IN":
        return column.in_(list(value))
    return column.not_in(list(value))


def search(conn: Connection, query: RunSearch, records: Records) -> RunPage:
    """One page of runs: the ids are found, sorted and cut over narrow rows (an index walk
    when the sort is on a filtered metric) and joined to their rows, then the page's tags,
    properties and metrics are read."""
    check(query)
    runs = t.runs
    stmt, filtered = _matching(query)
    keys: list[tuple[Any, bool | None]] = []  # each sort column and whether it ascends
    for number, order in enumerate(query.order_by):
        if order.kind == "metric":
            latest = filtered.get(order.key)
            if latest is None:  # runs without the metric sort last
                latest = t.latest_metrics.alias(f"o{number}")
                stmt = stmt.outerjoin(
                    latest, sa.and_(latest.c.run_id == runs.c.id, latest.c.name == order.key)
                )
            column: Any = latest.c.value
        elif order.kind in ("tag", "property"):
            table = (t.tags if order.kind == "tag" else t.properties).alias(f"p{number}")
            stmt = stmt.outerjoin(
                table, sa.and_(table.c.run_id == runs.c.id, table.c.key == order.key)
            )
            column = table.c.value
        else:
            column = runs.c[order.key]
        keys.append((column, order.ascending))
    # the tie-breakers keep their index order (no NULLS LAST: never null)
    keys += [(runs.c.created_at, None), (runs.c.id, None)]
    labels = [column.label(f"key{n}") for n, (column, _) in enumerate(keys)]
    page = (
        stmt.with_only_columns(*labels)
        .order_by(*_ordering(keys))
        .limit(query.limit + 1)
        .offset(query.offset)
        .subquery("page")
    )
    # the page's rows in one query: the ids cut over narrow rows, then joined to their runs
    sorted_keys = [(page.c[f"key{n}"], up) for n, (_, up) in enumerate(keys)]
    page_id = page.c[f"key{len(keys) - 1}"]
    found = conn.execute(
        sa.select(runs).join(page, runs.c.id == page_id).order_by(*_ordering(sorted_keys))
    ).all()
    more = len(found) > query.limit
    page_runs = records(conn, found[: query.limit])
    return RunPage(
        page_runs,
        query.offset + query.limit if more else None,
        latest_values(conn, [r.id for r in page_runs]),
    )


def count(conn: Connection, query: RunSearch) -> int:
    """How many runs match ``query``'s experiments and clauses (its page aside)."""
    check(query)
    stmt, _ = _matching(query)
    found = conn.execute(sa.select(sa.func.count()).select_from(stmt.subquery())).scalar()
    return int(found or 0)


def _matching(query: RunSearch) -> tuple[Any, dict[str, Any]]:
    """The ids of the runs matching the query's experiments and clauses, and the
    ``latest_metrics`` alias each metric clause joined (a sort on that metric reuses it)."""
    runs = t.runs
    stmt = sa.select(runs.c.id).where(runs.c.experiment.in_(list(query.experiments)))
    if query.top_level_only:
        stmt = stmt.where(runs.c.parent_id.is_(None))
    filtered: dict[str, Any] = {}  # metric name -> the alias its clause joined
    for number, clause in enumerate(query.clauses):
        if clause.kind == "metric":
            latest = filtered.get(clause.key)
            if latest is None:
                latest = filtered[clause.key] = t.latest_metrics.alias(f"m{number}")
                stmt = stmt.join(
                    latest, sa.and_(latest.c.run_id == runs.c.id, latest.c.name == clause.key)
                )
            stmt = stmt.where(_condition(latest.c.value, clause))
        elif clause.kind in ("tag", "property"):
            table = (t.tags if clause.kind == "tag" else t.properties).alias(f"k{number}")
            stmt = stmt.join(
                table, sa.and_(table.c.run_id == runs.c.id, table.c.key == clause.key)
            ).where(_condition(table.c.value, clause))
        else:
            stmt = stmt.where(_condition(runs.c[clause.key], clause))
    return stmt, filtered


def _ordering(keys: Sequence[tuple[Any, bool | None]]) -> list[Any]:
    """ORDER BY terms: ascending (True) or descending (False) with NULLs last; None:
    descending as the database sorts it."""
    terms = []
    for column, up in keys:
        if up is None:
            terms.append(column.desc())
        else:
            terms.append((column.asc() if up else column.desc()).nulls_last())
    return terms


def latest_values(conn: Connection, run_ids: Sequence[str]) -> dict[str, dict[str, float]]:
    """Each run's latest numeric value of each metric."""
    out: dict[str, dict[str, float]] = {run_id: {} for run_id in run_ids}
    c = t.latest_metrics.c
    for start in range(0, len(run_ids), 500):
        chunk = list(run_ids[start : start + 500])
        for run_id, name, value in conn.execute(
            sa.select(c.run_id, c.name, c.value).where(among(conn, c.run_id, chunk))
        ):
            out[run_id][name] = value
    return out


def among(conn: Connection, column: Any, values: Sequence[str]) -> Any:
    """``column IN values``: on PostgreSQL one array parameter (``= ANY``), so the statement
    is the same text for any number of values (compiled and prepared once, not per length)."""
    if conn.dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, list(values), type_=ARRAY(sa.String)))
    return column.in_(list(values))
