"""A :class:`~ferry.tracking.search.RunSearch` as SQL (SQLite and PostgreSQL).

Each metric clause joins ``latest_metrics`` on ``(run_id, name)`` and compares its indexed
value; tag and property clauses join their tables on their primary keys; a sort on a metric is
an outer join, its runs without the metric last. One more row than the page is fetched to know
whether a next page exists. The page's ids are found, sorted and cut over narrow rows in a
subquery joined to ``runs``, so the page's rows come back in one query. On PostgreSQL each
row carries its run's tags, properties and latest metric values aggregated as JSON — a search
is one round trip whatever the page size; on SQLite (in-process, no round trips) they follow,
one query each.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

from ferry.tracking import schema as t
from ferry.tracking.base import RunRecord
from ferry.tracking.search import Clause, OrderBy, RunPage, RunSearch, check

#: rows of ``runs`` as records; the second argument, when given, holds each row's tags and
#: properties already read (else they are read by run id)
Details = Sequence[tuple[Mapping[str, str | None], Mapping[str, str]]]
Records = Callable[[Connection, Sequence[sa.Row[Any]], Details | None], list[RunRecord]]


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
    if conn.dialect.name == "sqlite" and query.order_by and query.order_by[0].kind == "metric":
        ids = _metric_first(conn, query)
        by_id = {row.id: row for row in conn.execute(sa.select(runs).where(runs.c.id.in_(ids)))}
        found = [by_id[i] for i in ids if i in by_id]
    else:
        stmt, filtered = _matching(query)
        stmt, keys = _sort_keys(stmt, filtered, query.order_by, outer=True)
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
        stmt = sa.select(runs).join(page, runs.c.id == page_id).order_by(*_ordering(sorted_keys))
        if conn.dialect.name == "postgresql":
            return _page_with_details(conn, stmt, query, records)
        found = list(conn.execute(stmt).all())
    more = len(found) > query.limit
    page_runs = records(conn, found[: query.limit], None)
    return RunPage(
        page_runs,
        query.offset + query.limit if more else None,
        latest_values(conn, [r.id for r in page_runs]),
    )


def _page_with_details(conn: Connection, stmt: Any, query: RunSearch, records: Records) -> RunPage:
    """The page's rows with each run's tags, properties and latest metric values aggregated
    beside them (``json_object_agg``): one round trip to PostgreSQL instead of four, which is
    most of a search's time once the plan is an index walk. A non-finite metric value comes
    back as the JSON string PostgreSQL writes for it (``"NaN"``, ``"Infinity"``)."""
    runs = t.runs

    def aggregated(table: Any, key: Any, value: Any, name: str) -> Any:
        return (
            sa.select(sa.func.json_object_agg(key, value))
            .where(table.c.run_id == runs.c.id)
            .scalar_subquery()
            .label(name)
        )

    tags, props, latest = t.tags, t.properties, t.latest_metrics
    found = conn.execute(
        stmt.add_columns(
            aggregated(tags, tags.c.key, tags.c.value, "_tags"),
            aggregated(props, props.c.key, props.c.value, "_properties"),
            aggregated(latest, latest.c.name, latest.c.value, "_latest"),
        )
    ).all()
    rows = found[: query.limit]
    page_runs = records(conn, rows, [(r._tags or {}, r._properties or {}) for r in rows])
    return RunPage(
        page_runs,
        query.offset + query.limit if len(found) > query.limit else None,
        {r.id: {name: float(value) for name, value in (r._latest or {}).items()} for r in rows},
    )


def _sort_keys(
    stmt: Any, filtered: dict[str, Any], orders: Sequence[OrderBy], *, outer: bool, first: int = 0
) -> tuple[Any, list[tuple[Any, bool | None]]]:
    """The statement joined to what ``orders`` sort on, and the sort keys (each column and
    whether it ascends) ending with the tie-breakers. A metric, tag or property a run lacks
    is an outer join (sorted last)."""
    runs = t.runs
    keys: list[tuple[Any, bool | None]] = []
    for number, order in enumerate(orders, start=first):
        if order.kind == "metric":
            latest = filtered.get(order.key)
            if latest is None:
                latest = t.latest_metrics.alias(f"o{number}")
                on = sa.and_(latest.c.run_id == runs.c.id, latest.c.name == order.key)
                stmt = stmt.outerjoin(latest, on) if outer else stmt.join(latest, on)
            column: Any = latest.c.value
        elif order.kind in ("tag", "property"):
            table = (t.tags if order.kind == "tag" else t.properties).alias(f"p{number}")
            stmt = stmt.outerjoin(
                table, sa.and_(table.c.run_id == runs.c.id, table.c.key == order.key)
            )
            column = table.c.value
        else:
            column = attribute_column(order.key)
        keys.append((column, order.ascending))
    # the tie-breakers keep their index order (no NULLS LAST: never null)
    keys += [(runs.c.created_at, None), (runs.c.id, None)]
    return stmt, keys


def _metric_first(conn: Connection, query: RunSearch) -> list[str]:
    """The page's ids (one more than the page) for a sort on a metric, on SQLite.

    SQLite's planner walks the runs of the experiment and sorts them all when the metric is an
    outer join (~0.5 s at 100,000 runs). Here the runs that have the metric come first from an
    index walk of ``latest_metrics(name, value)`` (the runs table's own indexes hidden from the
    planner so it starts there; ~1 ms), and only past their end the runs without it follow,
    in the usual order — the same page the outer join gives."""
    runs = t.runs
    lead, rest = query.order_by[0], query.order_by[1:]
    want = query.limit + 1
    stmt, filtered = _matching(query, hide_run_indexes=True)
    latest = filtered.get(lead.key)
    if latest is None:
        latest = filtered[lead.key] = t.latest_metrics.alias("o_lead")
        stmt = stmt.join(latest, sa.and_(latest.c.run_id == runs.c.id, latest.c.name == lead.key))
    having = stmt
    stmt, keys = _sort_keys(stmt, filtered, rest, outer=True, first=1)
    keys.insert(0, (latest.c.value, lead.ascending))
    ids = list(
        conn.execute(
            stmt.with_only_columns(runs.c.id)
            .order_by(*_ordering(keys))
            .limit(want)
            .offset(query.offset)
        ).scalars()
    )
    if len(ids) == want or any(c.kind == "metric" and c.key == lead.key for c in query.clauses):
        return ids  # a page of runs with the metric (or a filter on it: nobody lacks it)
    have = query.offset + len(ids) if ids else _count(conn, having)
    lacking, filtered = _matching(query)
    other = t.latest_metrics.alias("o_none")
    lacking = lacking.where(
        ~sa.exists().where(other.c.run_id == runs.c.id, other.c.name == lead.key)
    )
    lacking, keys = _sort_keys(lacking, filtered, rest, outer=True, first=1)
    ids += conn.execute(
        lacking.with_only_columns(runs.c.id)
        .order_by(*_ordering(keys))
        .limit(want - len(ids))
        .offset(max(0, query.offset - have))
    ).scalars()
    return ids


def count(conn: Connection, query: RunSearch) -> int:
    """How many runs match ``query``'s experiments and clauses (its page aside)."""
    check(query)
    stmt, _ = _matching(query)
    return _count(conn, stmt)


def _count(conn: Connection, stmt: Any) -> int:
    found = conn.execute(sa.select(sa.func.count()).select_from(stmt.subquery())).scalar()
    return int(found or 0)


def _matching(query: RunSearch, *, hide_run_indexes: bool = False) -> tuple[Any, dict[str, Any]]:
    """The ids of the runs matching the query's experiments and clauses, and the
    ``latest_metrics`` alias each metric clause joined (a sort on that metric reuses it).
    ``hide_run_indexes`` compares ``experiment || ''`` (and ``parent_id || ''``): the same
    rows, but SQLite's planner no longer starts from the runs table's indexes."""
    runs = t.runs
    experiment: Any = runs.c.experiment
    parent: Any = runs.c.parent_id
    if hide_run_indexes:
        experiment, parent = experiment.concat(""), parent.concat("")
    stmt = sa.select(runs.c.id).where(experiment.in_(list(query.experiments)))
    if query.top_level_only:
        stmt = stmt.where(parent.is_(None))
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
            stmt = stmt.where(_condition(attribute_column(clause.key), clause))
    return stmt, filtered


def attribute_column(key: str) -> Any:
    """A run attribute as SQL: a column, or ``duration`` (end minus start; NULL until both)."""
    runs = t.runs
    if key == "duration":
        return runs.c.end_time - runs.c.start_time
    return runs.c[key]


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
