"""Pages of runs for ``ferry runs list``: newest first, with duration and latest metrics.

An editor's tree (editors/vscode) expands an experiment of 10,000 runs a page at a time, so a
page must cost one indexed query, not a walk over the experiment: with ``-e`` and no tag filter
the store's :meth:`~ferry.tracking.base.RunStore.search_runs` answers it (the SQL store with one
query over its ``latest_metrics`` table). A sweep's children (``--parent HD_…``) come sorted by
the sweep's primary metric, best first, as ``ferry runs show HD_…`` lists them.

Each run's ``primaryMetric`` is the one its sweep optimises where it has one, else the first of
its metrics by name (``None`` when it logged none).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from ferry.cli.app import Context


@dataclass
class Page:
    """The runs of one page, their latest metric values, and the offset of the next page."""

    runs: list[Any]
    latest: dict[str, dict[str, float]]
    next_offset: int | None
    primary: tuple[str, bool] | None = None  # (metric, maximize) of the parent sweep


def page_of_runs(
    ctx: Context,
    *,
    experiment: str | None,
    status: str | None,
    tags: dict[str, str | None] | None,
    include_children: bool,
    parent: str | None,
    limit: int,
    offset: int,
) -> Page:
    """One page of runs matching the filters (see the module docstring for the order)."""
    from ferry import liveness
    from ferry.status import parse_status
    from ferry.tracking import RunQuery

    store = ctx.ws.store
    statuses = [parse_status(status)] if status else None
    if parent is not None:
        return _children(ctx, parent, statuses, tags, limit, offset)
    if experiment is not None and not tags:
        from ferry.tracking.search import Clause, RunSearch

        clauses = (Clause("attribute", "status", "=", statuses[0].value),) if statuses else ()
        found = store.search_runs(
            RunSearch(
                experiments=(experiment,),
                clauses=clauses,
                limit=limit,
                offset=offset,
                top_level_only=not include_children,
            )
        )
        records, latest, more = found.runs, found.latest, found.next_offset
    else:
        records = store.list_runs(
            RunQuery(
                experiment=experiment,
                top_level_only=not include_children,
                statuses=statuses,
                tags=tags,
                limit=offset + limit + 1,
            )
        )
        more = offset + limit if len(records) > offset + limit else None
        records = records[offset : offset + limit]
        latest = store.latest_metrics([r.id for r in records])
    records = [r if r.status.is_terminal() else liveness.check(store, r) for r in records]
    return Page(records, latest, more)


def _children(
    ctx: Context,
    parent: str,
    statuses: list[Any] | None,
    tags: dict[str, str | None] | None,
    limit: int,
    offset: int,
) -> Page:
    """A run's children; a sweep's sorted by its primary metric (best first, unmeasured last)."""
    from ferry.tracking import RunQuery

    store = ctx.ws.store
    parent_record = store.get_run(parent)  # RunNotFound names the id
    records = store.list_runs(RunQuery(parent_id=parent, statuses=statuses, tags=tags))
    latest = store.latest_metrics([r.id for r in records])
    primary = None
    if parent_record.run_type == "hyperdrive":
        from ferry.hyperdrive.run import HyperDriveRun

        spec = HyperDriveRun.get(ctx.ws, parent)._spec
        primary = (str(spec.metric), bool(spec.maximize))
        name, maximize = primary

        def key(record: Any) -> tuple[int, float]:
            value = latest.get(record.id, {}).get(name)
            if value is None or math.isnan(value):
                return (1, 0.0)
            return (0, -value if maximize else value)

        records.sort(key=key)
    page = records[offset : offset + limit]
    more = offset + limit if len(records) > offset + limit else None
    return Page(page, {r.id: latest.get(r.id, {}) for r in page}, more, primary)


def summary(
    record: Any, latest: dict[str, float], primary: tuple[str, bool] | None
) -> dict[str, Any]:
    """One run as ``runs list --json`` prints it."""
    end = record.end_time or (None if record.status.is_terminal() else time.time())
    duration = end - record.start_time if record.start_time is not None and end else None
    metric = None
    if primary is not None and primary[0] in latest:
        metric = {"name": primary[0], "value": latest[primary[0]]}
    elif primary is None and latest:
        name = min(latest)
        metric = {"name": name, "value": latest[name]}
    return {
        "runId": record.id,
        "experiment": record.experiment,
        "status": record.status.value,
        "target": record.target,
        "parentRunId": record.parent_id,
        "runType": record.run_type,
        "number": record.number,
        "displayName": record.display_name,
        "createdAt": record.created_at,
        "startTime": record.start_time,
        "endTime": record.end_time,
        "durationSeconds": duration,
        "tags": dict(record.tags),
        "metrics": dict(latest),
        "primaryMetric": metric,
    }
