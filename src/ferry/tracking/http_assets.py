"""The asset-store contract over HTTP (datastores, datasets, models, lineage).

Mixed into :class:`~ferry.tracking.http.HttpRunStore`, so ``asset_store(ws.store)`` of a
server's workspace is the server's asset store; each method is one request to
:mod:`ferry.server.routes_assets`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from ferry.tracking.assets import (
    AssetStore,
    DatasetRecord,
    DatastoreRecord,
    ModelRecord,
    RunDatasetRecord,
)
from ferry.tracking.wire_assets import from_wire, to_wire


def _q(text: str) -> str:
    return quote(text, safe="")


class HttpAssets(AssetStore):
    """Asset-store methods for a class with ``_call(method, path, body, **params)``."""

    def _call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        raise NotImplementedError

    # datastores ----------------------------------------------------------------------------
    def save_datastore(self, record: DatastoreRecord, *, overwrite: bool = False) -> None:
        self._call(
            "PUT",
            f"/assets/datastores/{_q(record.name)}",
            {"record": to_wire(record)},
            overwrite=str(overwrite).lower(),
        )

    def get_datastore(self, name: str) -> DatastoreRecord | None:
        found = self._call("GET", f"/assets/datastores/{_q(name)}")
        return from_wire(DatastoreRecord, found) if found else None

    def list_datastores(self) -> list[DatastoreRecord]:
        return [from_wire(DatastoreRecord, r) for r in self._call("GET", "/assets/datastores")]

    def delete_datastore(self, name: str) -> bool:
        return bool(self._call("DELETE", f"/assets/datastores/{_q(name)}")["deleted"])

    def set_default_datastore(self, name: str) -> None:
        self._call("POST", "/assets/default-datastore", {"name": name})

    def default_datastore(self) -> str | None:
        found = self._call("GET", "/assets/default-datastore")["name"]
        return str(found) if found is not None else None

    # datasets ------------------------------------------------------------------------------
    def save_dataset(self, record: DatasetRecord) -> DatasetRecord:
        found = self._call("POST", "/assets/datasets/save", {"record": to_wire(record)})
        return from_wire(DatasetRecord, found)

    def register_dataset(self, record: DatasetRecord, *, create_new_version: bool) -> DatasetRecord:
        body = {"record": to_wire(record), "create_new_version": create_new_version}
        return from_wire(DatasetRecord, self._call("POST", "/assets/datasets/register", body))

    def get_dataset(self, name: str, version: int | None = None) -> DatasetRecord:
        found = self._call("GET", "/assets/datasets/by-name", name=name, version=version)
        return from_wire(DatasetRecord, found)

    def get_dataset_by_id(self, dataset_id: str) -> DatasetRecord:
        return from_wire(
            DatasetRecord, self._call("GET", f"/assets/datasets/by-id/{_q(dataset_id)}")
        )

    def list_datasets(self) -> dict[str, list[int]]:
        return {k: list(v) for k, v in self._call("GET", "/assets/datasets").items()}

    def update_dataset(
        self,
        dataset_id: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str | None] | None = None,
    ) -> DatasetRecord:
        body = {
            "dataset_id": dataset_id,
            "description": description,
            "tags": dict(tags) if tags is not None else None,
        }
        return from_wire(DatasetRecord, self._call("POST", "/assets/datasets/update", body))

    def unregister_dataset(self, name: str) -> int:
        return int(self._call("POST", "/assets/datasets/unregister", {"name": name})["count"])

    # models --------------------------------------------------------------------------------
    def register_model(self, record: ModelRecord) -> ModelRecord:
        return from_wire(
            ModelRecord, self._call("POST", "/assets/models", {"record": to_wire(record)})
        )

    def get_model(self, name: str, version: int | None = None) -> ModelRecord:
        return from_wire(
            ModelRecord, self._call("GET", "/assets/models/by-name", name=name, version=version)
        )

    def list_models(
        self, name: str | None = None, run_id: str | None = None, latest: bool = False
    ) -> list[ModelRecord]:
        found = self._call(
            "GET", "/assets/models", name=name, run_id=run_id, latest=str(latest).lower()
        )
        return [from_wire(ModelRecord, r) for r in found]

    def update_model(
        self,
        name: str,
        version: int,
        *,
        description: str | None = None,
        tags: Mapping[str, str | None] | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> ModelRecord:
        body = {
            "name": name,
            "version": version,
            "description": description,
            "tags": dict(tags) if tags is not None else None,
            "properties": dict(properties) if properties is not None else None,
        }
        return from_wire(ModelRecord, self._call("POST", "/assets/models/update", body))

    def delete_model(self, name: str, version: int) -> bool:
        return bool(self._call("DELETE", "/assets/models", name=name, version=version)["deleted"])

    # lineage -------------------------------------------------------------------------------
    def add_run_datasets(self, records: Sequence[RunDatasetRecord]) -> None:
        if records:
            self._call("POST", "/assets/run-datasets", {"records": [to_wire(r) for r in records]})

    def list_run_datasets(
        self, run_id: str | None = None, dataset_id: str | None = None
    ) -> list[RunDatasetRecord]:
        found = self._call("GET", "/assets/run-datasets", run_id=run_id, dataset_id=dataset_id)
        return [from_wire(RunDatasetRecord, r) for r in found]
