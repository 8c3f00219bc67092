"""Datastores, dataset versions, models and lineage over HTTP: one route per asset-store
method (:class:`ferry.tracking.assets.AssetStore`), for user tokens.

The files of datasets and models are blobs (sent by hash through the blob routes); these routes
carry only their records.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from ferry.server.auth import require_user, services
from ferry.server.services import ServerServices
from ferry.tracking.accounts import TokenRecord
from ferry.tracking.assets import (
    AssetStore,
    DatasetRecord,
    DatastoreRecord,
    ModelRecord,
    RunDatasetRecord,
    asset_store,
)
from ferry.tracking.wire_assets import from_wire, to_wire

router = APIRouter(prefix="/assets", tags=["assets"])
Svc = Depends(services)
User = Depends(require_user)


def _assets(svc: ServerServices) -> AssetStore:
    return asset_store(svc.store)


class Record(BaseModel):
    record: dict[str, Any]


class Register(Record):
    create_new_version: bool = False


class Name(BaseModel):
    name: str


class DatasetUpdate(BaseModel):
    dataset_id: str
    description: str | None = None
    tags: dict[str, str | None] | None = None


class ModelUpdate(BaseModel):
    name: str
    version: int
    description: str | None = None
    tags: dict[str, str | None] | None = None
    properties: dict[str, str] | None = None


class Lineage(BaseModel):
    records: list[dict[str, Any]]


# datastores ----------------------------------------------------------------------------------
@router.put("/datastores/{name}")
def save_datastore(
    name: str,
    body: Record,
    overwrite: bool = False,
    svc: ServerServices = Svc,
    _: TokenRecord = User,
) -> dict[str, Any]:
    record = from_wire(DatastoreRecord, {**body.record, "name": name})
    _assets(svc).save_datastore(record, overwrite=overwrite)
    return {}


@router.get("/datastores/{name}")
def get_datastore(
    name: str, svc: ServerServices = Svc, _: TokenRecord = User
) -> dict[str, Any] | None:
    found = _assets(svc).get_datastore(name)
    return to_wire(found) if found else None


@router.get("/datastores")
def list_datastores(svc: ServerServices = Svc, _: TokenRecord = User) -> list[dict[str, Any]]:
    return [to_wire(r) for r in _assets(svc).list_datastores()]


@router.delete("/datastores/{name}")
def delete_datastore(
    name: str, svc: ServerServices = Svc, _: TokenRecord = User
) -> dict[str, bool]:
    return {"deleted": _assets(svc).delete_datastore(name)}


@router.post("/default-datastore")
def set_default_datastore(
    body: Name, svc: ServerServices = Svc, _: TokenRecord = User
) -> dict[str, Any]:
    _assets(svc).set_default_datastore(body.name)
    return {}


@router.get("/default-datastore")
def default_datastore(svc: ServerServices = Svc, _: TokenRecord = User) -> dict[str, str | None]:
    return {"name": _assets(svc).default_datastore()}


# datasets ------------------------------------------------------------------------------------
@router.post("/datasets/save")
def save_dataset(body: Record, svc: ServerServices = Svc, _: TokenRecord = User) -> dict[str, Any]:
    return to_wire(_assets(svc).save_dataset(from_wire(DatasetRecord, body.record)))


@router.post("/datasets/register")
def register_dataset(
    body: Register, svc: ServerServices = Svc, _: TokenRecord = User
) -> dict[str, Any]:
    record = from_wire(DatasetRecord, body.record)
    return to_wire(
        _assets(svc).register_dataset(record, create_new_version=body.create_new_version)
    )


@router.get("/datasets/by-name")
def get_dataset(
    name: str,
    version: int | None = Query(None, ge=1, le=2**31 - 1),
    svc: ServerServices = Svc,
    _: TokenRecord = User,
) -> dict[str, Any]:
    return to_wire(_assets(svc).get_dataset(name, version))


@router.get("/datasets/by-id/{dataset_id}")
def get_dataset_by_id(
    dataset_id: str, svc: ServerServices = Svc, _: TokenRecord = User
) -> dict[str, Any]:
    return to_wire(_assets(svc).get_dataset_by_id(dataset_id))


@router.get("/datasets")
def list_datasets(svc: ServerServices = Svc, _: TokenRecord = User) -> dict[str, list[int]]:
    return _assets(svc).list_datasets()


@router.post("/datasets/update")
def update_dataset(
    body: DatasetUpdate, svc: ServerServices = Svc, _: TokenRecord = User
) -> dict[str, Any]:
    found = _assets(svc).update_dataset(
        body.dataset_id, description=body.description, tags=body.tags
    )
    return to_wire(found)


@router.post("/datasets/unregister")
def unregister_dataset(
    body: Name, svc: ServerServices = Svc, _: TokenRecord = User
) -> dict[str, int]:
    return {"count": _assets(svc).unregister_dataset(body.name)}


# models --------------------------------------------------------------------------------------
@router.post("/models")
def register_model(
    body: Record, svc: ServerServices = Svc, _: TokenRecord = User
) -> dict[str, Any]:
    return to_wire(_assets(svc).register_model(from_wire(ModelRecord, body.record)))


@router.get("/models/by-name")
def get_model(
    name: str,
    version: int | None = Query(None, ge=1, le=2**31 - 1),
    svc: ServerServices = Svc,
    _: TokenRecord = User,
) -> dict[str, Any]:
    return to_wire(_assets(svc).get_model(name, version))


@router.get("/models")
def list_models(
    name: str | None = None,
    run_id: str | None = None,
    latest: bool = False,
    svc: ServerServices = Svc,
    _: TokenRecord = User,
) -> list[dict[str, Any]]:
    return [to_wire(r) for r in _assets(svc).list_models(name, run_id, latest)]


@router.post("/models/update")
def update_model(
    body: ModelUpdate, svc: ServerServices = Svc, _: TokenRecord = User
) -> dict[str, Any]:
    found = _assets(svc).update_model(
        body.name,
        body.version,
        description=body.description,
        tags=body.tags,
        properties=body.properties,
    )
    return to_wire(found)


@router.delete("/models")
def delete_model(
    name: str,
    version: int = Query(ge=1, le=2**31 - 1),
    svc: ServerServices = Svc,
    _: TokenRecord = User,
) -> dict[str, bool]:
    return {"deleted": _assets(svc).delete_model(name, version)}


# lineage -------------------------------------------------------------------------------------
@router.post("/run-datasets")
def add_run_datasets(
    body: Lineage, svc: ServerServices = Svc, _: TokenRecord = User
) -> dict[str, Any]:
    _assets(svc).add_run_datasets([from_wire(RunDatasetRecord, r) for r in body.records])
    return {}


@router.get("/run-datasets")
def list_run_datasets(
    run_id: str | None = None,
    dataset_id: str | None = None,
    svc: ServerServices = Svc,
    _: TokenRecord = User,
) -> list[dict[str, Any]]:
    return [to_wire(r) for r in _assets(svc).list_run_datasets(run_id, dataset_id)]
