"""The asset store on the run history's SQL database (SQLite or PostgreSQL).

It shares the run store's engine and transactions (:class:`~ferry.tracking.sql.SqlRunStore`),
so driver errors become the same :class:`~ferry.errors.StoreError` naming the database. Version
numbers are taken as environments' are: read the maximum, insert, and on a unique-key conflict
(a concurrent registration won) read again, inside a savepoint.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ferry.errors import ConfigError, StoreError
from ferry.tracking import asset_tables as a
from ferry.tracking.assets import (
    AssetExists,
    AssetNotFound,
    AssetStore,
    DatasetRecord,
    DatastoreRecord,
    ModelRecord,
    RunDatasetRecord,
)
from ferry.tracking.sql import SqlRunStore

VERSION_ATTEMPTS = 200
BUILTIN_DEFAULT = "workspaceblobstore"


class SqlAssetStore(AssetStore):
    """Datastores, dataset versions, models and lineage in the run store's database."""

    def __init__(self, runs: SqlRunStore) -> None:
        self.runs = runs

    # datastores -------------------------------------------------------------------------
    def save_datastore(self, record: DatastoreRecord, *, overwrite: bool = False) -> None:
        c = a.datastores.c
        with self.runs._write() as conn:
            found = conn.execute(sa.select(c.is_default).where(c.name == record.name)).first()
            if found is not None and not overwrite:
                raise AssetExists(
                    f"a datastore named {record.name!r} is registered already; pass "
                    "overwrite=True to replace it"
                )
            conn.execute(a.datastores.delete().where(c.name == record.name))
            conn.execute(
                a.datastores.insert().values(
                    name=record.name,
                    kind=record.kind,
                    config=dict(record.config),
                    is_default=bool(found.is_default) if found is not None else False,
                    created_at=record.created_at or time.time(),
                )
            )

    def get_datastore(self, name: str) -> DatastoreRecord | None:
        c = a.datastores.c
        with self.runs._read() as conn:
            row = conn.execute(sa.select(a.datastores).where(c.name == name)).first()
        return _datastore(row) if row is not None else None

    def list_datastores(self) -> list[DatastoreRecord]:
        with self.runs._read() as conn:
            found = conn.execute(sa.select(a.datastores).order_by(a.datastores.c.name)).all()
        return [_datastore(row) for row in found]

    def delete_datastore(self, name: str) -> bool:
        with self.runs._write() as conn:
            result = conn.execute(a.datastores.delete().where(a.datastores.c.name == name))
            return bool(result.rowcount)

    def set_default_datastore(self, name: str) -> None:
        c = a.datastores.c
        with self.runs._write() as conn:
            known = conn.execute(sa.select(c.name).where(c.name == name)).first()
            if name != BUILTIN_DEFAULT and known is None:
                raise AssetNotFound(
                    f"no datastore {name!r} to make the default; registered: {_names(conn)}"
                )
            conn.execute(a.datastores.update().values(is_default=False))
            conn.execute(a.datastores.update().where(c.name == name).values(is_default=True))

    def default_datastore(self) -> str | None:
        c = a.datastores.c
        with self.runs._read() as conn:
            row = conn.execute(sa.select(c.name).where(c.is_default.is_(True))).first()
        return None if row is None else str(row.name)

    # datasets ---------------------------------------------------------------------------
    def save_dataset(self, record: DatasetRecord) -> DatasetRecord:
        stamped = _stamped(record, name=None, version=None)
        with self.runs._write() as conn:
            conn.execute(a.dataset_versions.insert().values(**_dataset_row(stamped)))
        return stamped

    def register_dataset(self, record: DatasetRecord, *, create_new_version: bool) -> DatasetRecord:
        if not record.name:
            raise ConfigError("a dataset needs a name to be registered")
        c = a.dataset_versions.c
        with self.runs._write() as conn:
            for _attempt in range(VERSION_ATTEMPTS):
                latest = conn.execute(
                    sa.select(a.dataset_versions)
                    .where(c.name == record.name)
                    .order_by(c.version.desc())
                    .limit(1)
                ).first()
                if latest is not None:
                    if latest.manifest_id == record.manifest_id and dict(latest.definition) == dict(
                        record.definition
                    ):
                        return _dataset(latest)
                    if not create_new_version:
                        raise AssetExists(
                            f"There is already a dataset registered under name "
                            f"'{record.name}'. Specify `create_new_version=True` to register "
                            "the dataset as a new version. Use `update`, `add_tags`, or "
                            "`remove_tags` to change only the description or tags."
                        )
                version = int(latest.version) + 1 if latest is not None else 1
                stamped = _stamped(record, name=record.name, version=version)
                try:
                    with conn.begin_nested():
                        conn.execute(a.dataset_versions.insert().values(**_dataset_row(stamped)))
                except sa.exc.IntegrityError:
                    continue
                return stamped
        raise StoreError(f"could not take a version of dataset {record.name!r}; try again")

    def get_dataset(self, name: str, version: int | None = None) -> DatasetRecord:
        c = a.dataset_versions.c
        with self.runs._read() as conn:
            stmt = sa.select(a.dataset_versions).where(c.name == name)
            if version is not None:
                stmt = stmt.where(c.version == version)
            row = conn.execute(stmt.order_by(c.version.desc()).limit(1)).first()
            if row is None:
                versions = [
                    v
                    for (v,) in conn.execute(
                        sa.select(c.version).where(c.name == name).order_by(c.version)
                    )
                ]
                names = sorted(
                    {n for (n,) in conn.execute(sa.select(c.name).where(c.name.is_not(None)))}
                )
        if row is not None:
            return _dataset(row)
        if versions:
            raise AssetNotFound(
                f"dataset {name!r} has no version {version}; its versions are {versions}"
            )
        known = ", ".join(repr(n) for n in names[:20]) or "none"
        raise AssetNotFound(
            f"there is no dataset named {name!r} in this workspace (registered datasets: {known}); "
            "register one with dataset.register(ws, name)"
        )

    def get_dataset_by_id(self, dataset_id: str) -> DatasetRecord:
        with self.runs._read() as conn:
            row = conn.execute(
                sa.select(a.dataset_versions).where(a.dataset_versions.c.id == dataset_id)
            ).first()
        if row is None:
            raise AssetNotFound(f"there is no dataset with id {dataset_id!r} in this workspace")
        return _dataset(row)

    def list_datasets(self) -> dict[str, list[int]]:
        c = a.dataset_versions.c
        out: dict[str, list[int]] = {}
        with self.runs._read() as conn:
            for name, version in conn.execute(
                sa.select(c.name, c.version).where(c.name.is_not(None)).order_by(c.name, c.version)
            ):
                out.setdefault(name, []).append(int(version))
        return out

    def update_dataset(
        self,
        dataset_id: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str | None] | None = None,
    ) -> DatasetRecord:
        values: dict[str, Any] = {}
        if description is not None:
            values["description"] = description
        if tags is not None:
            values["tags"] = dict(tags)
        if values:
            with self.runs._write() as conn:
                conn.execute(
                    a.dataset_versions.update()
                    .where(a.dataset_versions.c.id == dataset_id)
                    .values(**values)
                )
        return self.get_dataset_by_id(dataset_id)

    def unregister_dataset(self, name: str) -> int:
        c = a.dataset_versions.c
        with self.runs._write() as conn:
            result = conn.execute(
                a.dataset_versions.update().where(c.name == name).values(name=None, version=None)
            )
            return int(result.rowcount or 0)

    # models -----------------------------------------------------------------------------
    def register_model(self, record: ModelRecord) -> ModelRecord:
        c = a.models.c
        with self.runs._write() as conn:
            for _attempt in range(VERSION_ATTEMPTS):
                latest = conn.execute(
                    sa.select(sa.func.max(c.version)).where(c.name == record.name)
                ).scalar()
                stamped = _model_stamped(record, int(latest or 0) + 1)
                try:
                    with conn.begin_nested():
                        conn.execute(a.models.insert().values(**_model_row(stamped)))
                except sa.exc.IntegrityError:
                    continue
                return stamped
        raise StoreError(f"could not take a version of model {record.name!r}; try again")

    def get_model(self, name: str, version: int | None = None) -> ModelRecord:
        c = a.models.c
        with self.runs._read() as conn:
            stmt = sa.select(a.models).where(c.name == name)
            if version is not None:
                stmt = stmt.where(c.version == version)
            row = conn.execute(stmt.order_by(c.version.desc()).limit(1)).first()
            versions = [
                v
                for (v,) in conn.execute(
                    sa.select(c.version).where(c.name == name).order_by(c.version)
                )
            ]
        if row is not None:
            return _model(row)
        if versions:
            raise AssetNotFound(
                f"ModelNotFound: model {name!r} has no version {version}; its versions are "
                f"{versions}"
            )
        raise AssetNotFound(
            f"ModelNotFound: Model with name {name} not found in provided workspace; list "
            "models with Model.list(ws) or `ferry models list`"
        )

    def list_models(
        self, name: str | None = None, run_id: str | None = None, latest: bool = False
    ) -> list[ModelRecord]:
        c = a.models.c
        stmt = sa.select(a.models).order_by(c.name, c.version.desc())
        if name is not None:
            stmt = stmt.where(c.name == name)
        if run_id is not None:
            stmt = stmt.where(c.run_id == run_id)
        with self.runs._read() as conn:
            found = [_model(row) for row in conn.execute(stmt)]
        if latest:
            newest: dict[str, ModelRecord] = {}
            for model in found:
                newest.setdefault(model.name, model)
            found = list(newest.values())
        return found

    def update_model(
        self,
        name: str,
        version: int,
        *,
        description: str | None = None,
        tags: Mapping[str, str | None] | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> ModelRecord:
        c = a.models.c
        with self.runs._write() as conn:
            row = conn.execute(
                sa.select(a.models).where(c.name == name, c.version == version)
            ).first()
            if row is None:
                raise AssetNotFound(f"ModelNotFound: no model {name}:{version}")
            values: dict[str, Any] = {}
            if description is not None:
                values["description"] = description
            if tags is not None:
                values["tags"] = dict(tags)
            if properties:
                current = dict(row.properties or {})
                for key, value in properties.items():
                    if key in current and current[key] != value:
                        raise ConfigError(
                            f"model {name}:{version} has property {key!r} = {current[key]!r} "
                            "already; properties cannot change (add_properties only adds)"
                        )
                    current[key] = value
                values["properties"] = current
            if values:
                conn.execute(
                    a.models.update().where(c.name == name, c.version == version).values(**values)
                )
        return self.get_model(name, version)

    def delete_model(self, name: str, version: int) -> bool:
        c = a.models.c
        with self.runs._write() as conn:
            result = conn.execute(a.models.delete().where(c.name == name, c.version == version))
            return bool(result.rowcount)

    # lineage ----------------------------------------------------------------------------
    def add_run_datasets(self, records: Sequence[RunDatasetRecord]) -> None:
        if not records:
            return
        c = a.run_datasets.c
        with self.runs._write() as conn:
            for r in records:
                conn.execute(
                    a.run_datasets.delete().where(
                        c.run_id == r.run_id, c.direction == r.direction, c.name == r.name
                    )
                )
                conn.execute(
                    a.run_datasets.insert().values(
                        run_id=r.run_id,
                        direction=r.direction,
                        name=r.name,
                        dataset_id=r.dataset_id,
                        mechanism=r.mechanism,
                        path_on_compute=r.path_on_compute,
                    )
                )

    def list_run_datasets(
        self, run_id: str | None = None, dataset_id: str | None = None
    ) -> list[RunDatasetRecord]:
        c = a.run_datasets.c
        stmt = sa.select(a.run_datasets).order_by(c.run_id, c.direction, c.name)
        if run_id is not None:
            stmt = stmt.where(c.run_id == run_id)
        if dataset_id is not None:
            stmt = stmt.where(c.dataset_id == dataset_id)
        with self.runs._read() as conn:
            return [
                RunDatasetRecord(
                    r.run_id, r.direction, r.name, r.dataset_id, r.mechanism, r.path_on_compute
                )
                for r in conn.execute(stmt)
            ]


def _names(conn: Connection) -> str:
    found = [n for (n,) in conn.execute(sa.select(a.datastores.c.name).order_by("name"))]
    return ", ".join([BUILTIN_DEFAULT, *found])


def _datastore(row: Any) -> DatastoreRecord:
    return DatastoreRecord(row.name, row.kind, dict(row.config or {}), row.created_at)


def _stamped(record: DatasetRecord, *, name: str | None, version: int | None) -> DatasetRecord:
    from dataclasses import replace

    return replace(record, name=name, version=version, created_at=time.time())


def _dataset_row(r: DatasetRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "version": r.version,
        "kind": r.kind,
        "definition": dict(r.definition),
        "manifest_id": r.manifest_id,
        "locator_id": r.locator_id,
        "files": r.files,
        "bytes": r.bytes,
        "description": r.description,
        "tags": dict(r.tags),
        "run_id": r.run_id,
        "created_at": r.created_at,
    }


def _dataset(row: Any) -> DatasetRecord:
    return DatasetRecord(
        id=row.id,
        kind=row.kind,
        definition=dict(row.definition or {}),
        manifest_id=row.manifest_id,
        files=int(row.files),
        bytes=int(row.bytes),
        locator_id=row.locator_id,
        name=row.name,
        version=row.version,
        description=row.description,
        tags=dict(row.tags or {}),
        created_at=row.created_at,
        run_id=row.run_id,
    )


def _model_stamped(record: ModelRecord, version: int) -> ModelRecord:
    from dataclasses import replace

    return replace(record, version=version, created_at=time.time())


def _model_row(r: ModelRecord) -> dict[str, Any]:
    return {
        "name": r.name,
        "version": r.version,
        "manifest_id": r.manifest_id,
        "root": r.root,
        "is_file": r.is_file,
        "files": r.files,
        "bytes": r.bytes,
        "description": r.description,
        "tags": dict(r.tags),
        "properties": dict(r.properties),
        "framework": r.framework,
        "framework_version": r.framework_version,
        "run_id": r.run_id,
        "experiment": r.experiment,
        "snapshot_id": r.snapshot_id,
        "environment_hash": r.environment_hash,
        "datasets": [list(pair) for pair in r.datasets],
        "created_at": r.created_at,
    }


def _model(row: Any) -> ModelRecord:
    return ModelRecord(
        name=row.name,
        manifest_id=row.manifest_id,
        root=row.root,
        is_file=bool(row.is_file),
        files=int(row.files),
        bytes=int(row.bytes),
        version=int(row.version),
        description=row.description,
        tags=dict(row.tags or {}),
        properties=dict(row.properties or {}),
        framework=row.framework,
        framework_version=row.framework_version,
        run_id=row.run_id,
        experiment=row.experiment,
        snapshot_id=row.snapshot_id,
        environment_hash=row.environment_hash,
        datasets=tuple((str(s), str(d)) for s, d in (row.datasets or [])),
        created_at=row.created_at,
    )
