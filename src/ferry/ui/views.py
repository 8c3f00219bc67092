"""The UI's read models of many runs: experiments, the runs table, compare, sweeps.

Every answer is built from a few queries whatever the workspace's size: the runs table is one
search page (MLflow's filter syntax, sorted on any column across all pages by the SQL store's
``latest_metrics`` index), one count, and one query for the page's child counts. The column
chooser's keys come from the newest runs only. Run ids and names come from users' URLs: an
unknown one is :class:`~ferry.errors.RunNotFound` (404), a bad filter a
:class:`~ferry.errors.ConfigError` (400) whose message the page shows under the filter box.

Example::

    runs_page(store, RunsQuery(experiment="diabetes", filter="metrics.mse < 3000",
                               order_by=("metrics.mse ASC",), limit=50))
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ferry.errors import ConfigError, RunNotFound
from ferry.tracking import RunRecord
from ferry.tracking.mlflow_search import parse_filter, parse_order_by
from ferry.tracking.search import MAX_PAGE, Clause, RunSearch
from ferry.tracking.sql import SqlRunStore

#: properties ferry and the reference keep on every run: not shown as a run's parameters
_INTERNAL = ("azureml.", "ferry.", "mlflow.", "ContentSnapshotId", "_azureml")
HYPERDRIVE = "hyperdrive"
#: the tag a sweep writes on a child it stopped early (its reason)
TERMINATED = "ferry.hyperdrive.terminated"
MAX_COMPARE = 50


@dataclass(frozen=True)
class RunsQuery:
    experiment: str | None = None
    filter: str = ""
    order_by: tuple[str, ...] = ()
    offset: int = 0
    limit: int = 50
    parent: str | None = None
    top_level_only: bool = True


def row(record: RunRecord, metrics: Mapping[str, float], children: int = 0) -> dict[str, Any]:
    """One run as a line of the runs table."""
    end = record.end_time
    duration = (end - record.start_time) if end is not None and record.start_time else None
    return {
        "id": record.id,
        "number": record.number,
        "experiment": record.experiment,
        "display_name": record.display_name,
        "status": record.status.value,
        "created_at": record.created_at,
        "start_time": record.start_time,
        "end_time": end,
        "duration": duration,
        "target": record.target,
        "run_type": record.run_type,
        "parent_id": record.parent_id,
        "children": children,
        "tags": {k: v for k, v in record.tags.items() if not k.startswith(record.id + "_")},
        "params": params_of(record),
        "metrics": dict(metrics),
        "terminal": record.status.is_terminal(),
    }


def params_of(record: RunRecord) -> dict[str, str]:
    """A run's parameters: the properties a user or MLflow's ``log_param`` set."""
    return {k: v for k, v in record.properties.items() if not k.startswith(_INTERNAL)}


def experiments(store: SqlRunStore) -> list[dict[str, Any]]:
    """Every experiment with its run counts, newest activity first (archived ones last)."""
    activity = store.experiment_activity()
    out: list[dict[str, Any]] = []
    for record in store.list_experiment_records(archived=None):
        total, active, newest = activity.get(record.name, (0, 0, None))
        out.append(
            {
                "name": record.name,
                "id": record.id,
                "runs": total,
                "active": active,
                "last_run_time": newest,
                "archived": record.archived,
            }
        )
    out.sort(key=lambda e: (bool(e["archived"]), -float(e["last_run_time"] or 0.0), str(e["name"])))
    return out


def runs_page(store: SqlRunStore, query: RunsQuery) -> dict[str, Any]:
    """One page of the runs table (see :class:`RunsQuery`; ``filter``/``order_by`` in
    MLflow's syntax)."""
    if not 1 <= query.limit <= min(MAX_PAGE, 1000):
        raise ConfigError(f"a page holds 1 to 1000 runs, not {query.limit}")
    clauses = list(parse_filter(query.filter)) if query.filter.strip() else []
    order = parse_order_by([o for o in query.order_by if o.strip()])
    top_level = query.top_level_only
    if query.parent is not None:
        parent = store.get_run(query.parent)  # RunNotFound: 404
        names: list[str] = [parent.experiment]
        clauses.append(Clause("attribute", "parent_id", "=", parent.id))
        top_level = False
    elif query.experiment is not None:
        if store.find_experiment(query.experiment) is None:
            raise RunNotFound(
                f"there is no experiment {query.experiment!r} in this workspace "
                "(the experiments page lists them)"
            )
        names = [query.experiment]
    else:
        names = store.list_experiments()
    search = RunSearch(
        experiments=tuple(names),
        clauses=tuple(clauses),
        order_by=tuple(order),
        limit=query.limit,
        offset=query.offset,
        top_level_only=top_level,
    )
    page = store.search_runs(search)
    total = store.count_runs(search)
    children = store.count_children([r.id for r in page.runs])
    rows = [row(r, page.latest.get(r.id, {}), children.get(r.id, 0)) for r in page.runs]
    columns = store.recent_keys(names) if query.parent is None else _keys_of(rows)
    columns["params"] = [k for k in columns["params"] if not k.startswith(_INTERNAL)]
    for one in rows:  # the page's own keys, even where the newest runs lack them
        for kind in ("metrics", "tags", "params"):
            missing = set(one[kind]) - set(columns[kind])
            columns[kind] = sorted({*columns[kind], *missing})
    return {
        "runs": rows,
        "total": total,
        "offset": query.offset,
        "next_offset": page.next_offset,
        "columns": columns,
    }


def _keys_of(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    return {
        kind: sorted({k for r in rows for k in r[kind]}) for kind in ("metrics", "tags", "params")
    }


def compare(store: SqlRunStore, run_ids: Sequence[str]) -> dict[str, Any]:
    """Runs side by side: their rows, and each parameter, tag and metric per run with the
    keys whose values differ."""
    ids = list(dict.fromkeys(i for i in run_ids if i))
    if not 1 <= len(ids) <= MAX_COMPARE:
        raise ConfigError(f"compare 1 to {MAX_COMPARE} runs (give ?runs=ID,ID,…), not {len(ids)}")
    records = [store.get_run(i) for i in ids]
    latest = store.latest_metrics(ids)
    rows = [row(r, latest.get(r.id, {})) for r in records]
    out: dict[str, Any] = {"runs": rows, "differs": {}}
    for kind in ("params", "tags", "metrics"):
        keys = sorted({k for r in rows for k in r[kind]})
        table = {k: [r[kind].get(k) for r in rows] for k in keys}
        out[kind] = table
        out["differs"][kind] = [k for k, values in table.items() if len(set(map(repr, values))) > 1]
    arguments = [json.dumps(r.definition.get("arguments", [])) for r in records]
    out["arguments"] = [r.definition.get("arguments", []) for r in records]
    out["differs"]["arguments"] = len(set(arguments)) > 1
    return out


def sweep(store: SqlRunStore, run_id: str) -> dict[str, Any]:
    """A HyperDrive run's children ranked by its primary metric (best first), with their
    hyperparameters and which were stopped early, and why."""
    parent = store.get_run(run_id)
    if HYPERDRIVE not in parent.run_type.lower():
        raise ConfigError(f"run {run_id} is not a HyperDrive run (it is a {parent.run_type})")
    config = _json_tag(parent.tags.get("primary_metric_config"))
    metric = str(config.get("name") or "")
    goal = str(config.get("goal") or "maximize").lower()
    policy = _json_tag(parent.tags.get("policy_config")).get("name")
    page = store.search_runs(
        RunSearch(
            experiments=(parent.experiment,),
            clauses=(Clause("attribute", "parent_id", "=", parent.id),),
            limit=MAX_PAGE,
        )
    )
    children: list[dict[str, Any]] = []
    names: dict[str, None] = {}
    for record in page.runs:
        params = _json_tag(parent.tags.get(record.id))
        names.update(dict.fromkeys(params))
        value = page.latest.get(record.id, {}).get(metric)
        reason = record.tags.get(TERMINATED)
        children.append(
            {
                "id": record.id,
                "status": record.status.value,
                "params": params,
                "metric": value,
                "best": False,
                "early_terminated": reason is not None,
                "reason": reason,
                "start_time": record.start_time,
                "end_time": record.end_time,
            }
        )
    maximize = goal != "minimize"
    ranked = [c for c in children if c["metric"] is not None]
    ranked.sort(key=lambda c: float(c["metric"]), reverse=maximize)
    if ranked:
        ranked[0]["best"] = True
    unranked = [c for c in children if c["metric"] is None]
    return {
        "primary_metric": metric,
        "goal": "maximize" if maximize else "minimize",
        "policy": policy,
        "children": ranked + unranked,
        "hyperparameters": list(names),
    }


def _json_tag(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
