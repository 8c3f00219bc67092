"""ferry's REST API over the run-store contract: one route per contract method.

Each route checks who may do it (:mod:`ferry.server.auth`), decodes its body with
:mod:`ferry.tracking.wire` (a trust boundary: a wrong shape is a 400 naming the field) and calls
one method of the store. :class:`~ferry.tracking.http.HttpRunStore` is the client of exactly
these routes.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from ferry.server.auth import principal, require_runs, require_user, services
from ferry.server.boundary import FerryJSON
from ferry.server.services import ServerServices
from ferry.tracking import wire
from ferry.tracking.accounts import TokenRecord
from ferry.tracking.base import op_run_ids
from ferry.tracking.search import Clause, OrderBy, RunSearch

router = APIRouter()
Svc = Depends(services)
User = Depends(require_user)
Anyone = Depends(principal)


class Name(BaseModel):
    name: str = Field(max_length=255)


class Archive(Name):
    archived: bool


class ExperimentTags(Name):
    tags: dict[str, str | None]


class ExperimentUntag(Name):
    keys: list[str]


class RunBody(BaseModel):
    record: dict[str, Any] = Field(description="a run record (tracking/wire.py)")


class StatusBody(BaseModel):
    status: str
    error: dict[str, Any] | None = None
    at: float | None = None
    expected: str | None = None


class Fields(BaseModel):
    fields: dict[str, Any]


class Tags(BaseModel):
    tags: dict[str, str | None]


class Keys(BaseModel):
    keys: list[str]


class Properties(BaseModel):
    properties: dict[str, str]


class SeriesBody(BaseModel):
    series: list[dict[str, Any]]


class SeriesQuery(BaseModel):
    run_ids: list[str] = Field(max_length=100_000)
    name: str | None = None


class RunIds(BaseModel):
    run_ids: list[str] = Field(max_length=100_000)


class Artifacts(BaseModel):
    artifacts: list[dict[str, Any]]


class Target(BaseModel):
    kind: str
    config: dict[str, Any]


class Spec(BaseModel):
    spec: dict[str, Any]


class ApplyBody(BaseModel):
    ops: list[dict[str, Any]]
    cursor: dict[str, Any] | None = None


class ClauseBody(BaseModel):
    kind: Literal["metric", "tag", "property", "attribute"]
    key: str
    op: Literal["=", "!=", ">", ">=", "<", "<=", "LIKE", "ILIKE", "IN", "NOT IN"]
    value: Any = None


class OrderBody(BaseModel):
    kind: Literal["metric", "tag", "property", "attribute"]
    key: str
    ascending: bool = True


class SearchBody(BaseModel):
    experiments: list[str]
    clauses: list[ClauseBody] = []
    order_by: list[OrderBody] = []
    limit: int = Field(1000, ge=1, le=50_000)
    offset: int = Field(0, ge=0)
    top_level_only: bool = False


# experiments ---------------------------------------------------------------------------------
@router.post("/experiments/ensure", tags=["experiments"])
def ensure_experiment(
    body: Name, svc: ServerServices = Svc, _: TokenRecord = User
) -> dict[str, Any]:
    svc.store.ensure_experiment(body.name)
    return {}


@router.get("/experiments/names", tags=["experiments"])
def list_experiments(svc: ServerServices = Svc, _: TokenRecord = User) -> list[str]:
    return svc.store.list_experiments()


@router.get("/experiments", tags=["experiments"])
def list_experiment_records(
    archived: Literal["active", "archived", "all"] = "active",
    svc: ServerServices = Svc,
    _: TokenRecord = User,
) -> list[dict[str, Any]]:
    which = {"active": False, "archived": True, "all": None}[archived]
    return [wire.experiment_to_wire(r) for r in svc.store.list_experiment_records(archived=which)]


@router.get("/experiments/find", tags=["experiments"])
def find_experiment(
    name: str = Query(max_length=255), svc: ServerServices = Svc, _: TokenRecord = User
) -> dict[str, Any] | None:
    found = svc.store.find_experiment(name)
    return wire.experiment_to_wire(found) if found else None


@router.post("/experiments/archive", tags=["experiments"])
def set_experiment_archived(
    body: Archive, svc: ServerServices = Svc, _: TokenRecord = User
) -> dict[str, Any]:
    return wire.experiment_to_wire(svc.store.set_experiment_archived(body.name, body.archived))


@router.post("/experiments/tags", tags=["experiments"])
def set_experiment_tags(
    body: ExperimentTags, svc: ServerServices = Svc, _: TokenRecord = User
) -> dict[str, Any]:
    svc.store.set_experiment_tags(body.name, body.tags)
    return {}


@router.post("/experiments/untag", tags=["experiments"])
def remove_experiment_tags(
    body: ExperimentUntag, svc: ServerServices = Svc, _: TokenRecord = User
) -> dict[str, Any]:
    svc.store.remove_experiment_tags(body.name, body.keys)
    return {}


@router.post("/experiments/delete", tags=["experiments"])
def delete_experiment(
    body: Name, svc: ServerServices = Svc, _: TokenRecord = User
) -> dict[str, Any]:
    svc.store.delete_experiment(body.name)
    return {}


# runs ----------------------------------------------------------------------------------------
@router.post("/runs", tags=["runs"])
def create_run(
    body: RunBody, svc: ServerServices = Svc, who: TokenRecord = Anyone
) -> dict[str, Any]:
    record = wire.run_from_wire(body.record)
    if who.run_id is not None:  # a job may create children of its run only
        require_runs(svc, who, [record.parent_id or record.id])
    svc.store.create_run(svc.server_side(record))
    return {}


@router.get("/runs/{run_id}", tags=["runs"])
def get_run(run_id: str, svc: ServerServices = Svc, who: TokenRecord = Anyone) -> dict[str, Any]:
    require_runs(svc, who, [run_id])
    return wire.run_to_wire(svc.read_run(run_id))


@router.post("/runs/query", tags=["runs"])
def list_runs(
    body: dict[str, Any], svc: ServerServices = Svc, _: TokenRecord = User
) -> list[dict[str, Any]]:
    return [wire.run_to_wire(r) for r in svc.store.list_runs(wire.query_from_wire(body))]


@router.post("/runs/search", tags=["runs"], response_class=FerryJSON)
def search_runs(body: SearchBody, svc: ServerServices = Svc, _: TokenRecord = User) -> FerryJSON:
    page = svc.store.search_runs(
        RunSearch(
            experiments=tuple(body.experiments),
            clauses=tuple(
                Clause(
                    c.kind, c.key, c.op, tuple(c.value) if isinstance(c.value, list) else c.value
                )
                for c in body.clauses
            ),
            order_by=tuple(OrderBy(o.kind, o.key, o.ascending) for o in body.order_by),
            limit=body.limit,
            offset=body.offset,
            top_level_only=body.top_level_only,
        )
    )
    return FerryJSON(  # records as they are: pydantic-core writes a dataclass as run_to_wire
        {
            "runs": page.runs,
            "next_offset": page.next_offset,
            "latest": page.latest,
        }
    )


@router.post("/runs/{run_id}/status", tags=["runs"])
def set_status(
    run_id: str, body: StatusBody, svc: ServerServices = Svc, who: TokenRecord = Anyone
) -> dict[str, Any]:
    require_runs(svc, who, [run_id])
    status = svc.store.set_status(
        run_id,
        wire.status_from_wire(body.status),
        error=body.error,
        at=body.at,
        expected=wire.status_from_wire(body.expected) if body.expected else None,
    )
    return {"status": status.value}


@router.patch("/runs/{run_id}", tags=["runs"])
def update_run(
    run_id: str, body: Fields, svc: ServerServices = Svc, who: TokenRecord = Anyone
) -> dict[str, Any]:
    require_runs(svc, who, [run_id])
    svc.store.update_run(run_id, **body.fields)
    return {}


@router.post("/runs/{run_id}/tags", tags=["runs"])
def set_tags(
    run_id: str, body: Tags, svc: ServerServices = Svc, who: TokenRecord = Anyone
) -> dict[str, Any]:
    require_runs(svc, who, [run_id])
    svc.store.set_tags(run_id, body.tags)
    return {}


@router.post("/runs/{run_id}/untag", tags=["runs"])
def remove_tags(
    run_id: str, body: Keys, svc: ServerServices = Svc, who: TokenRecord = Anyone
) -> dict[str, Any]:
    require_runs(svc, who, [run_id])
    svc.store.remove_tags(run_id, body.keys)
    return {}


@router.post("/runs/{run_id}/properties", tags=["runs"])
def add_properties(
    run_id: str, body: Properties, svc: ServerServices = Svc, who: TokenRecord = Anyone
) -> dict[str, Any]:
    require_runs(svc, who, [run_id])
    svc.store.add_properties(run_id, body.properties)
    return {}


@router.get("/runs/{run_id}/cursor", tags=["runs"])
def get_spool_cursor(
    run_id: str, svc: ServerServices = Svc, who: TokenRecord = Anyone
) -> dict[str, int]:
    require_runs(svc, who, [run_id])
    return svc.store.get_spool_cursor(run_id)


@router.get("/runs/{run_id}/artifact-index", tags=["runs"])
def list_artifacts(
    run_id: str, svc: ServerServices = Svc, who: TokenRecord = Anyone
) -> list[dict[str, Any]]:
    require_runs(svc, who, [run_id])
    records = svc.store.list_artifacts(run_id)
    root = svc.workspace.path
    return [{**wire.artifact_to_wire(a), "stored": (root / a.path).is_file()} for a in records]


# metrics and artifacts -----------------------------------------------------------------------
@router.post("/metrics", tags=["metrics"])
def log_series(
    body: SeriesBody, svc: ServerServices = Svc, who: TokenRecord = Anyone
) -> dict[str, Any]:
    series = [wire.series_from_wire(s) for s in body.series]
    require_runs(svc, who, [s.run_id for s in series])
    svc.store.log_series(series)
    return {}


# metric values may be NaN or infinite: these answers bypass pydantic's serialisation (which
# would turn them into null) and are written by FerryJSON as Python's json writes them
@router.post("/metrics/query", tags=["metrics"], response_class=FerryJSON)
def get_series(
    body: SeriesQuery, svc: ServerServices = Svc, who: TokenRecord = Anyone
) -> FerryJSON:
    require_runs(svc, who, body.run_ids)
    return FerryJSON(
        [wire.series_to_wire(s) for s in svc.store.get_series(body.run_ids, body.name)]
    )


@router.post("/metrics/latest", tags=["metrics"], response_class=FerryJSON)
def latest_metrics(body: RunIds, svc: ServerServices = Svc, who: TokenRecord = Anyone) -> FerryJSON:
    require_runs(svc, who, body.run_ids)
    return FerryJSON(svc.store.latest_metrics(body.run_ids))


@router.post("/artifacts", tags=["metrics"])
def add_artifacts(
    body: Artifacts, svc: ServerServices = Svc, who: TokenRecord = Anyone
) -> dict[str, Any]:
    records = [wire.artifact_from_wire(a) for a in body.artifacts]
    require_runs(svc, who, [a.run_id for a in records])
    svc.store.add_artifacts(records)
    return {}


@router.post("/apply", tags=["runs"])
def apply(body: ApplyBody, svc: ServerServices = Svc, who: TokenRecord = Anyone) -> dict[str, Any]:
    ops = [wire.op_from_wire(op) for op in body.ops]
    cursor = wire.cursor_from_wire(body.cursor)
    touched = [run_id for op in ops for run_id in op_run_ids(op)]
    require_runs(svc, who, touched + ([cursor[0]] if cursor else []))
    return {"warnings": svc.store.apply(ops, cursor=cursor)}


# compute targets and environments ------------------------------------------------------------
@router.put("/targets/{name}", tags=["targets"])
def save_target(
    name: str, body: Target, svc: ServerServices = Svc, _: TokenRecord = User
) -> dict[str, Any]:
    svc.store.save_target(name, body.kind, body.config)
    return {}


@router.get("/targets/{name}", tags=["targets"])
def get_target(
    name: str, svc: ServerServices = Svc, _: TokenRecord = User
) -> dict[str, Any] | None:
    found = svc.store.get_target(name)
    return {"kind": found[0], "config": found[1]} if found else None


@router.get("/targets", tags=["targets"])
def list_targets(svc: ServerServices = Svc, _: TokenRecord = User) -> dict[str, dict[str, Any]]:
    return {n: {"kind": k, "config": c} for n, (k, c) in svc.store.list_targets().items()}


@router.delete("/targets/{name}", tags=["targets"])
def delete_target(name: str, svc: ServerServices = Svc, _: TokenRecord = User) -> dict[str, bool]:
    return {"deleted": svc.store.delete_target(name)}


@router.post("/environments/{name}", tags=["environments"])
def register_environment(
    name: str, body: Spec, svc: ServerServices = Svc, _: TokenRecord = User
) -> dict[str, int]:
    return {"version": svc.store.register_environment(name, body.spec)}


@router.get("/environments/{name}", tags=["environments"])
def get_environment(
    name: str,
    version: int | None = Query(None, ge=1, le=2**31 - 1),
    svc: ServerServices = Svc,
    _: TokenRecord = User,
) -> dict[str, Any]:
    found, spec = svc.store.get_environment(name, version)
    return {"version": found, "spec": spec}


@router.get("/environments", tags=["environments"])
def list_environments(svc: ServerServices = Svc, _: TokenRecord = User) -> dict[str, list[int]]:
    return svc.store.list_environments()
