"""MLflow's tracking API over a ferry run store: MLflow's JSON in, MLflow's JSON out.

The server's ``/api/2.0/mlflow/…`` routes call one function here each, and so does ferry's
MLflow tracking-store plugin (:mod:`ferry.tracking.mlflow_plugin`), so MLflow clients read and
write ferry experiments and runs the same way over HTTP and in-process. Nothing here imports
``mlflow``.

How MLflow's words map onto ferry's:

- an experiment is a ferry experiment (MLflow's ``"0"`` is ferry's ``Default``); deleting one
  archives it;
- a run is a ferry run; params are properties (immutable, as in MLflow), tags are tags,
  metrics are scalar metric values (timestamps in milliseconds, steps kept);
- statuses: Queued-like → ``SCHEDULED``, live → ``RUNNING``, Completed → ``FINISHED``, Failed →
  ``FAILED``, Canceled → ``KILLED``. An MLflow client's status updates change only runs that
  MLflow itself created: a ferry run's status belongs to its supervisor, so ``mlflow.start_run``
  (RUNNING) and its exit (FINISHED) inside a ferry job never end the run.

Errors are :class:`MlflowError` with MLflow's error codes; ferry errors from the store are
translated by :func:`mlflow_error`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from ferry.errors import ConfigError, FerryError, InvalidTransition, RunNotFound
from ferry.status import RunStatus
from ferry.tracking.base import (
    AddProperties,
    ExperimentRecord,
    MetricSeries,
    RunRecord,
    RunStore,
    SetTags,
    StoreOp,
)
from ferry.tracking.mlflow_search import parse_filter, parse_order_by
from ferry.tracking.search import RunSearch

#: the run type of runs an MLflow client created (their status is the client's to set)
MLFLOW_RUN_TYPE = "mlflow.run"
DEFAULT_EXPERIMENT = "Default"
DEFAULT_EXPERIMENT_ID = "0"
#: MLflow's own limits on one log-batch request, kept for clients that rely on them
MAX_BATCH_METRICS, MAX_BATCH_PARAMS, MAX_BATCH_TAGS = 1000, 100, 100
#: ferry lets a batch carry far more (it stores series, not rows)
MAX_FERRY_BATCH = 1_000_000

_TO_MLFLOW = {
    RunStatus.COMPLETED: "FINISHED",
    RunStatus.FAILED: "FAILED",
    RunStatus.CANCELED: "KILLED",
    RunStatus.NOT_STARTED: "SCHEDULED",
    RunStatus.QUEUED: "SCHEDULED",
    RunStatus.UNAPPROVED: "SCHEDULED",
    RunStatus.PROVISIONING: "SCHEDULED",
}
_FROM_MLFLOW = {
    "RUNNING": RunStatus.RUNNING,
    "SCHEDULED": RunStatus.QUEUED,
    "FINISHED": RunStatus.COMPLETED,
    "FAILED": RunStatus.FAILED,
    "KILLED": RunStatus.CANCELED,
}


class MlflowError(FerryError):
    """An MLflow API error: MLflow's code (``RESOURCE_DOES_NOT_EXIST`` …) and an HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status

    def to_json(self) -> dict[str, str]:
        return {"error_code": self.code, "message": str(self)}


def mlflow_error(exc: FerryError) -> MlflowError:
    """A ferry error as MLflow's client expects it."""
    if isinstance(exc, MlflowError):
        return exc
    if isinstance(exc, RunNotFound):
        return MlflowError("RESOURCE_DOES_NOT_EXIST", str(exc), 404)
    if isinstance(exc, ConfigError | InvalidTransition):
        return MlflowError("INVALID_PARAMETER_VALUE", str(exc), 400)
    return MlflowError("INTERNAL_ERROR", str(exc), 500)


def mlflow_status(status: RunStatus) -> str:
    return _TO_MLFLOW.get(status, "RUNNING")


def _need(body: Mapping[str, Any], key: str, kind: type = str) -> Any:
    value = body.get(key)
    if value is None or value == "":
        raise MlflowError(
            "INVALID_PARAMETER_VALUE", f"Missing value for required parameter '{key}'"
        )
    if kind is str and not isinstance(value, str):
        value = str(value)
    return value


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise MlflowError("INVALID_PARAMETER_VALUE", f"{what} must be a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):  # proto JSON writes int64 and NaN as strings
        try:
            return float(value)
        except ValueError:
            pass
    raise MlflowError("INVALID_PARAMETER_VALUE", f"{what} must be a number, got {value!r}")


def _int(value: Any, what: str, default: int = 0) -> int:
    if value is None or value == "":
        return default
    number = _number(value, what)
    if number != number or number in (float("inf"), float("-inf")):
        raise MlflowError("INVALID_PARAMETER_VALUE", f"{what} must be an integer, got {value!r}")
    return int(number)


# experiments ---------------------------------------------------------------------------------
def experiment_json(record: ExperimentRecord) -> dict[str, Any]:
    return {
        "experiment_id": experiment_id(record),
        "name": record.name,
        "artifact_location": f"mlflow-artifacts:/experiments/{experiment_id(record)}",
        "lifecycle_stage": "deleted" if record.archived else "active",
        "creation_time": _ms(record.created_at),
        "last_update_time": _ms(record.archived_time or record.created_at),
        "tags": [{"key": k, "value": v or ""} for k, v in sorted(record.tags.items())],
    }


def experiment_id(record: ExperimentRecord) -> str:
    return DEFAULT_EXPERIMENT_ID if record.name == DEFAULT_EXPERIMENT else record.id


def find_experiment_by_id(store: RunStore, exp_id: str) -> ExperimentRecord:
    if exp_id == DEFAULT_EXPERIMENT_ID:
        store.ensure_experiment(DEFAULT_EXPERIMENT)
        found = store.find_experiment(DEFAULT_EXPERIMENT)
        if found is not None:
            return found
    found = store.find_experiment_by_id(exp_id)
    if found is not None:
        return found
    raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"No Experiment with id={exp_id} exists", 404)


def create_experiment(store: RunStore, body: Mapping[str, Any]) -> dict[str, Any]:
    name = _need(body, "name")
    if store.find_experiment(name) is not None:
        raise MlflowError("RESOURCE_ALREADY_EXISTS", f"Experiment '{name}' already exists.", 400)
    store.ensure_experiment(name)
    tags = {t["key"]: t.get("value") for t in _items(body.get("tags"), "tags")}
    if tags:
        store.set_experiment_tags(name, tags)
    found = store.find_experiment(name)
    assert found is not None
    return {"experiment_id": experiment_id(found)}


def get_experiment(store: RunStore, body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "experiment": experiment_json(find_experiment_by_id(store, _need(body, "experiment_id")))
    }


def get_experiment_by_name(store: RunStore, body: Mapping[str, Any]) -> dict[str, Any]:
    name = _need(body, "experiment_name")
    if name == DEFAULT_EXPERIMENT:
        store.ensure_experiment(name)
    found = store.find_experiment(name)
    if found is None:
        raise MlflowError(
            "RESOURCE_DOES_NOT_EXIST", f"Could not find experiment with name '{name}'", 404
        )
    return {"experiment": experiment_json(found)}


def search_experiments(store: RunStore, body: Mapping[str, Any]) -> dict[str, Any]:
    view = str(body.get("view_type") or "ACTIVE_ONLY")
    archived = {"ACTIVE_ONLY": False, "DELETED_ONLY": True, "ALL": None}.get(view, False)
    store.ensure_experiment(DEFAULT_EXPERIMENT)
    records = store.list_experiment_records(archived=archived)
    name_filter = str(body.get("filter") or "").strip()
    if name_filter:
        records = [r for r in records if _experiment_matches(r, name_filter)]
    limit = _int(body.get("max_results"), "max_results", 1000)
    offset = _int(body.get("page_token"), "page_token", 0)
    page = records[offset : offset + limit]
    out: dict[str, Any] = {"experiments": [experiment_json(r) for r in page]}
    if offset + limit < len(records):
        out["next_page_token"] = str(offset + limit)
    return out


def _experiment_matches(record: ExperimentRecord, text: str) -> bool:
    """MLflow's experiment filters ferry understands: ``name = '…'`` and ``name LIKE '…'``."""
    from ferry.tracking.search import _matches

    for clause in parse_filter(text, experiment=True):
        if clause.kind == "attribute" and clause.key == "name":
            have: Any = record.name
        elif clause.kind == "tag":
            have = record.tags.get(clause.key)
        else:
            continue
        if not _matches(clause, have):
            return False
    return True


def delete_experiment(store: RunStore, body: Mapping[str, Any]) -> dict[str, Any]:
    record = find_experiment_by_id(store, _need(body, "experiment_id"))
    store.set_experiment_archived(record.name, True)
    return {}


def restore_experiment(store: RunStore, body: Mapping[str, Any]) -> dict[str, Any]:
    record = find_experiment_by_id(store, _need(body, "experiment_id"))
    store.set_experiment_archived(record.name, False)
    return {}


def update_experiment(store: RunStore, body: Mapping[str, Any]) -> dict[str, Any]:
    find_experiment_by_id(store, _need(body, "experiment_id"))
    raise MlflowError(
        "INVALID_PARAMETER_VALUE",
        "ferry experiments keep their names (runs refer to them); create a new experiment",
    )


def set_experiment_tag(store: RunStore, body: Mapping[str, Any]) -> dict[str, Any]:
    record = find_experiment_by_id(store, _need(body, "experiment_id"))
    store.set_experiment_tags(record.name, {_need(body, "key"): str(body.get("value") or "")})
    return {}


def delete_experiment_tag(store: RunStore, body: Mapping[str, Any]) -> dict[str, Any]:
    record = find_experiment_by_id(store, _need(body, "experiment_id"))
    store.remove_experiment_tags(record.name, [_need(body, "key")])
    return {}


# runs ----------------------------------------------------------------------------------------
def run_json(
    store: RunStore,
    record: RunRecord,
    latest: Mapping[str, float] | None = None,
    experiments: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A ferry run in MLflow's shape (metrics: the latest value of each numeric metric)."""
    if latest is None:
        latest = store.latest_metrics([record.id]).get(record.id, {})
    if experiments is not None and record.experiment in experiments:
        exp_id = experiments[record.experiment]
    else:
        found = store.find_experiment(record.experiment)
        exp_id = experiment_id(found) if found else ""
    run_name = record.display_name or str(record.tags.get("mlflow.runName") or record.id)
    tags = dict(record.tags)
    tags.setdefault("mlflow.runName", run_name)
    if record.parent_id:
        tags.setdefault("mlflow.parentRunId", record.parent_id)
    user = str(record.definition.get("submittedBy") or tags.get("mlflow.user") or "")
    return {
        "info": {
            "run_id": record.id,
            "run_uuid": record.id,
            "experiment_id": exp_id,
            "run_name": run_name,
            "user_id": user,
            "status": mlflow_status(record.status),
            "start_time": _ms(record.start_time or record.created_at),
            "end_time": _ms(record.end_time),
            "artifact_uri": f"mlflow-artifacts:/runs/{record.id}/artifacts",
            "lifecycle_stage": "active",
        },
        "data": {
            "metrics": [
                {"key": k, "value": v, "timestamp": 0, "step": 0} for k, v in sorted(latest.items())
            ],
            "params": [{"key": k, "value": v} for k, v in sorted(record.properties.items())],
            "tags": [{"key": k, "value": v or ""} for k, v in sorted(tags.items())],
        },
        "inputs": {},
    }


def create_run(store: RunStore, body: Mapping[str, Any], *, user: str = "") -> dict[str, Any]:
    exp = find_experiment_by_id(store, str(body.get("experiment_id") or DEFAULT_EXPERIMENT_ID))
    if exp.archived:
        raise MlflowError(
            "INVALID_STATE", f"experiment {exp.name!r} is deleted (archived); restore it first"
        )
    tags = {t["key"]: str(t.get("value") or "") for t in _items(body.get("tags"), "tags")}
    run_name = str(body.get("run_name") or tags.get("mlflow.runName") or "") or None
    start = body.get("start_time")
    started = _number(start, "start_time") / 1000 if start not in (None, "") else time.time()
    record = RunRecord(
        id=uuid.uuid4().hex,
        experiment=exp.name,
        status=RunStatus.RUNNING,
        parent_id=tags.get("mlflow.parentRunId") or None,
        target="mlflow",
        run_type=MLFLOW_RUN_TYPE,
        display_name=run_name,
        created_at=started,
        start_time=started,
        definition={"submittedBy": str(body.get("user_id") or user)},
        tags=tags,
    )
    store.create_run(record)
    return {"run": run_json(store, store.get_run(record.id), {})}


def get_run(store: RunStore, body: Mapping[str, Any]) -> dict[str, Any]:
    run_id = str(body.get("run_id") or body.get("run_uuid") or "")
    if not run_id:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'run_id'"
        )
    try:
        record = store.get_run(run_id)
    except RunNotFound:
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"Run '{run_id}' not found", 404) from None
    return {"run": run_json(store, record)}


def run_id_of(body: Mapping[str, Any]) -> str:
    run_id = body.get("run_id") or body.get("run_uuid")
    if not run_id or not isinstance(run_id, str):
        raise MlflowError(
            "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'run_id'"
        )
    return run_id


def update_run(store: RunStore, body: Mapping[str, Any]) -> dict[str, Any]:
    """MLflow's status update: applied to runs MLflow created, ignored for ferry's own runs
    (their status is their supervisor's); a new run name is kept either way."""
    run_id = run_id_of(body)
    record = store.get_run(run_id)
    name = body.get("run_name")
    if name:
        store.update_run(run_id, display_name=str(name)[:255])
    wanted = body.get("status")
    if wanted and record.run_type == MLFLOW_RUN_TYPE:
        status = _FROM_MLFLOW.get(str(wanted))
        if status is None:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"unknown run status {wanted!r}")
        end = body.get("end_time")
        at = _number(end, "end_time") / 1000 if end not in (None, "") else None
        if status != record.status and not record.status.is_terminal():
            store.set_status(run_id, status, at=at)
    return {"run_info": run_json(store, store.get_run(run_id))["info"]}


def delete_run(store: RunStore, body: Mapping[str, Any]) -> dict[str, Any]:
    store.get_run(run_id_of(body))
    raise MlflowError(
        "INVALID_PARAMETER_VALUE",
        "ferry keeps every run; tag it instead (for example ferry.hidden=true)",
    )


def _items(value: Any, what: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(v, dict) and isinstance(v.get("key"), str) and v["key"] for v in value
    ):
        raise MlflowError("INVALID_PARAMETER_VALUE", f"'{what}' must be a list of {{key, value}}")
    return value


def batch_ops(run_id: str, body: Mapping[str, Any], *, mlflow_limits: bool) -> list[StoreOp]:
    """The store operations of a log-batch request: metrics grouped into series per key."""
    metrics = _items(body.get("metrics"), "metrics")
    params = _items(body.get("params"), "params")
    tags = _items(body.get("tags"), "tags")
    limits = (
        (MAX_BATCH_METRICS, MAX_BATCH_PARAMS, MAX_BATCH_TAGS)
        if mlflow_limits
        else (MAX_FERRY_BATCH,) * 3
    )
    for items, limit, what in zip(
        (metrics, params, tags), limits, ("metrics", "params", "tags"), strict=True
    ):
        if len(items) > limit:
            raise MlflowError(
                "INVALID_PARAMETER_VALUE",
                f"A batch logging request can contain at most {limit} {what}. "
                f"Got {len(items)} {what}.",
            )
    ops: list[StoreOp] = []
    series: dict[str, MetricSeries] = {}
    for metric in metrics:
        key = metric["key"]
        value = _number(metric.get("value"), f"metric {key!r} value")
        found = series.get(key)
        if found is None:
            found = series[key] = MetricSeries(run_id, key, "scalar", [], [], [])
        found.values.append(value)
        assert found.steps is not None
        found.steps.append(_int(metric.get("step"), "step"))
        found.ts.append(_int(metric.get("timestamp"), "timestamp") / 1000)
    ops.extend(series.values())
    if params:
        ops.append(AddProperties(run_id, {p["key"]: str(p.get("value") or "") for p in params}))
    if tags:
        ops.append(SetTags(run_id, {t["key"]: str(t.get("value") or "") for t in tags}))
    return ops


def apply_batch(store: RunStore, run_id: str, ops: list[StoreOp]) -> dict[str, Any]:
    """Write a batch in one transaction; a refused part (a param changed) is an error."""
    store.get_run(run_id)  # an unknown run is RESOURCE_DOES_NOT_EXIST, not a skipped op
    refused = store.apply(ops)
    if refused:
        raise MlflowError("INVALID_PARAMETER_VALUE", "; ".join(refused))
    return {}


def log_batch(
    store: RunStore, body: Mapping[str, Any], *, mlflow_limits: bool = False
) -> dict[str, Any]:
    run_id = run_id_of(body)
    return apply_batch(store, run_id, batch_ops(run_id, body, mlflow_limits=mlflow_limits))


def log_metric(store: RunStore, body: Mapping[str, Any]) -> dict[str, Any]:
    metric = {k: body.get(k) for k in ("key", "value", "timestamp", "step")}
    return log_batch(store, {"run_id": run_id_of(body), "metrics": [metric]})


def log_param(store: RunStore, body: Mapping[str, Any]) -> dict[str, Any]:
    param = {"key": body.get("key"), "value": body.get("value")}
    return log_batch(store, {"run_id": run_id_of(body), "params": [param]})


def set_tag(store: RunStore, body: Mapping[str, Any]) -> dict[str, Any]:
    tag = {"key": body.get("key"), "value": body.get("value")}
    run_id = run_id_of(body)
    result = log_batch(store, {"run_id": run_id, "tags": [tag]})
    if tag["key"] == "mlflow.runName" and tag["value"]:
        store.update_run(run_id, display_name=str(tag["value"])[:255])
    return result


def delete_tag(store: RunStore, body: Mapping[str, Any]) -> dict[str, Any]:
    run_id = run_id_of(body)
    store.get_run(run_id)
    store.remove_tags(run_id, [_need(body, "key")])
    return {}


def metric_history(store: RunStore, body: Mapping[str, Any]) -> dict[str, Any]:
    run_id = run_id_of(body)
    key = _need(body, "metric_key")
    store.get_run(run_id)
    out = []
    for series in store.get_series([run_id], key):
        if series.type != "scalar":
            continue
        for record in series.records():
            value = record.value
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            out.append(
                {
                    "key": key,
                    "value": float(value),
                    "timestamp": _ms(record.ts),
                    "step": record.step or 0,
                }
            )
    return {"metrics": out}


def search_runs(store: RunStore, body: Mapping[str, Any]) -> dict[str, Any]:
    ids = body.get("experiment_ids") or []
    if not isinstance(ids, list):
        raise MlflowError("INVALID_PARAMETER_VALUE", "'experiment_ids' must be a list")
    experiments: dict[str, str] = {}
    for exp_id in ids:
        record = find_experiment_by_id(store, str(exp_id))
        experiments[record.name] = experiment_id(record)
    order = body.get("order_by") or []
    if not isinstance(order, list):
        raise MlflowError("INVALID_PARAMETER_VALUE", "'order_by' must be a list")
    search = RunSearch(
        experiments=tuple(experiments),
        clauses=tuple(parse_filter(str(body.get("filter") or ""))),
        order_by=tuple(parse_order_by([str(o) for o in order])),
        limit=_int(body.get("max_results"), "max_results", 1000),
        offset=_int(body.get("page_token"), "page_token", 0),
    )
    page = store.search_runs(search)
    out: dict[str, Any] = {
        "runs": [run_json(store, r, page.latest.get(r.id, {}), experiments) for r in page.runs]
    }
    if page.next_offset is not None:
        out["next_page_token"] = str(page.next_offset)
    return out


def ignored(_store: RunStore, body: Mapping[str, Any]) -> dict[str, Any]:
    """Calls MLflow clients make that ferry has nothing to keep for (log-inputs, outputs)."""
    return {}


#: MLflow REST path (after /api/2.0/mlflow/) → (method, handler)
Handler = Callable[[RunStore, Mapping[str, Any]], dict[str, Any]]
ENDPOINTS: dict[str, tuple[str, Handler]] = {
    "experiments/create": ("POST", create_experiment),
    "experiments/get": ("GET", get_experiment),
    "experiments/get-by-name": ("GET", get_experiment_by_name),
    "experiments/search": ("POST", search_experiments),
    "experiments/delete": ("POST", delete_experiment),
    "experiments/restore": ("POST", restore_experiment),
    "experiments/update": ("POST", update_experiment),
    "experiments/set-experiment-tag": ("POST", set_experiment_tag),
    "experiments/delete-experiment-tag": ("POST", delete_experiment_tag),
    "runs/create": ("POST", create_run),
    "runs/get": ("GET", get_run),
    "runs/update": ("POST", update_run),
    "runs/delete": ("POST", delete_run),
    "runs/search": ("POST", search_runs),
    "runs/log-metric": ("POST", log_metric),
    "runs/log-batch": ("POST", log_batch),
    "runs/log-parameter": ("POST", log_param),
    "runs/set-tag": ("POST", set_tag),
    "runs/delete-tag": ("POST", delete_tag),
    "runs/log-inputs": ("POST", ignored),
    "runs/outputs": ("POST", ignored),
    # MLflow 3 asks for logged models when listing artifacts: ferry's models are its own
    "logged-models/search": ("POST", ignored),
    "metrics/get-history": ("GET", metric_history),
}
