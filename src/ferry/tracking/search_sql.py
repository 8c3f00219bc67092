"""A :class:`~ferry.tracking.search.RunSearch` as one SQL query (SQLite and PostgreSQL).

Each metric clause joins ``latest_metrics`` on ``(run_id, name)`` and compares its indexed
value; tag and property clauses join their tables on their primary keys; a sort on a metric is
an outer join, its runs without the metric last. One more row than the page is fetched to know
whether a next page exists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
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
    """One page of runs: the ids are found, sorted and cut in one query over narrow rows
    (an index walk when the sort is on a filtered metric), then the page's records are read."""
    check(query)
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
    ordering: list[Any] = []
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
        ordering.append((column.asc() if order.ascending else column.desc()).nulls_last())
    ordering += [runs.c.created_at.desc(), runs.c.id.desc()]
    stmt = stmt.order_by(*ordering).limit(query.limit + 1).offset(query.offset)
    ids = list(conn.execute(stmt).scalars())
    more = len(ids) > query.limit
    ids = ids[: query.limit]
    found: dict[str, sa.Row[Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for row in conn.execute(sa.select(runs).where(runs.c.id.in_(chunk))):
            found[row.id] = row
    page = records(conn, [found[i] for i in ids if i in found])
    return RunPage(
        page,
        query.offset + query.limit if more else None,
        latest_values(conn, [r.id for r in page]),
    )


def latest_values(conn: Connection, run_ids: Sequence[str]) -> dict[str, dict[str, float]]:
    """Each run's latest numeric value of each metric."""
    out: dict[str, dict[str, float]] = {run_id: {} for run_id in run_ids}
    c = t.latest_metrics.c
    for start in range(0, len(run_ids), 500):
        chunk = list(run_ids[start : start + 500])
        for run_id, name, value in conn.execute(
            sa.select(c.run_id, c.name, c.value).where(c.run_id.in_(chunk))
        ):
            out[run_id][name] = value
    return out
