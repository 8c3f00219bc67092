"""The asset-store contract: datastores, dataset versions, models and the runs that used them.

A second small contract beside :class:`~ferry.tracking.base.RunStore`, so that a run store that
keeps no assets (a remote store still being built) stays a valid run store. The SQL stores
answer both: :func:`asset_store` gives the asset half of a workspace's store. Records are plain
frozen data; contents never live here — a dataset version and a model name a manifest in the
workspace's content-addressed blob store (:mod:`ferry.snapshot`), and a datastore's record holds
no secret (credentials come from the environment or the workspace's credentials file).

Example::

    assets = asset_store(ws.store)
    record = assets.register_dataset(DatasetRecord(id=new_id(), kind="file", …, name="mnist"),
                                     create_new_version=True)
    record.version            # 1, then 2, … per name
    assets.get_model("sk", version=None).version   # the latest
"""

from __future__ import annotations

import abc
import uuid
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ferry.errors import ConfigError, StoreError
from ferry.tracking.base import RunStore


class AssetNotFound(ConfigError):
    """No datastore, dataset (version) or model of that name; the message lists what exists."""


class AssetExists(ConfigError):
    """A name is taken and the call did not ask to add a version or overwrite."""


@dataclass(frozen=True)
class DatastoreRecord:
    """A registered datastore: its kind (``folder``, ``s3``, ``azureblob``) and settings,
    never a secret."""

    name: str
    kind: str
    config: Mapping[str, Any] = field(default_factory=dict)
    created_at: float = 0.0


@dataclass(frozen=True)
class DatasetRecord:
    """One dataset version: what it was defined as, and the manifest of the files it holds.

    ``name``/``version`` are None for a dataset that was saved but not registered (one a run
    read or wrote without a name). ``locator_id`` names a blob telling where each file came from
    (datastore and path), ``run_id`` the run that wrote it.
    """

    id: str
    kind: str
    definition: Mapping[str, Any]
    manifest_id: str
    files: int
    bytes: int
    locator_id: str | None = None
    name: str | None = None
    version: int | None = None
    description: str | None = None
    tags: Mapping[str, str | None] = field(default_factory=dict)
    created_at: float = 0.0
    run_id: str | None = None


@dataclass(frozen=True)
class ModelRecord:
    """One model version: a manifest of its files (``root`` is the registered file or folder's
    name), and what produced it — run, snapshot, environment and datasets."""

    name: str
    manifest_id: str
    root: str
    is_file: bool
    files: int
    bytes: int
    version: int | None = None
    description: str | None = None
    tags: Mapping[str, str | None] = field(default_factory=dict)
    properties: Mapping[str, str] = field(default_factory=dict)
    framework: str | None = None
    framework_version: str | None = None
    run_id: str | None = None
    experiment: str | None = None
    snapshot_id: str | None = None
    environment_hash: str | None = None
    #: (scenario, dataset id) pairs: "training" for what the run read, or the caller's names
    datasets: tuple[tuple[str, str], ...] = ()
    created_at: float = 0.0


@dataclass(frozen=True)
class RunDatasetRecord:
    """A dataset version a run read (``input``) or wrote (``output``), under ``name``."""

    run_id: str
    direction: str
    name: str
    dataset_id: str
    mechanism: str = "mount"
    path_on_compute: str | None = None


def new_dataset_id() -> str:
    """A dataset version's id (the reference's ids are UUIDs)."""
    return str(uuid.uuid4())


class AssetStore(abc.ABC):
    """Persistent datastores, dataset versions, models and their lineage."""

    # datastores -------------------------------------------------------------------------
    @abc.abstractmethod
    def save_datastore(self, record: DatastoreRecord, *, overwrite: bool = False) -> None:
        """Store a datastore; AssetExists when the name is taken and ``overwrite`` is False."""

    @abc.abstractmethod
    def get_datastore(self, name: str) -> DatastoreRecord | None: ...

    @abc.abstractmethod
    def list_datastores(self) -> list[DatastoreRecord]: ...

    @abc.abstractmethod
    def delete_datastore(self, name: str) -> bool: ...

    @abc.abstractmethod
    def set_default_datastore(self, name: str) -> None:
        """Make ``name`` (which must be registered, or the built-in default) the default."""

    @abc.abstractmethod
    def default_datastore(self) -> str | None:
        """The name set by :meth:`set_default_datastore`; None means the built-in default."""

    # datasets ---------------------------------------------------------------------------
    @abc.abstractmethod
    def save_dataset(self, record: DatasetRecord) -> DatasetRecord:
        """Keep a dataset version without a name (one a run read or wrote); returns it."""

    @abc.abstractmethod
    def register_dataset(self, record: DatasetRecord, *, create_new_version: bool) -> DatasetRecord:
        """Register ``record`` under ``record.name`` as its next version (1, 2, …).

        When the latest version has the same definition and manifest, that version is returned
        and nothing is written. Otherwise, when the name exists and ``create_new_version`` is
        False, AssetExists with the reference's message.
        """

    @abc.abstractmethod
    def get_dataset(self, name: str, version: int | None = None) -> DatasetRecord:
        """A version (the latest when None); AssetNotFound naming the versions there are."""

    @abc.abstractmethod
    def get_dataset_by_id(self, dataset_id: str) -> DatasetRecord: ...

    @abc.abstractmethod
    def list_datasets(self) -> dict[str, list[int]]:
        """Every registered name with its versions, sorted."""

    @abc.abstractmethod
    def update_dataset(
        self,
        dataset_id: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str | None] | None = None,
    ) -> DatasetRecord:
        """Change a version's description and tags (its content never changes)."""

    @abc.abstractmethod
    def unregister_dataset(self, name: str) -> int:
        """Forget the name (every version); the versions stay for the runs that used them."""

    # models -----------------------------------------------------------------------------
    @abc.abstractmethod
    def register_model(self, record: ModelRecord) -> ModelRecord:
        """Store ``record`` as the next version of its name; returns it with its version."""

    @abc.abstractmethod
    def get_model(self, name: str, version: int | None = None) -> ModelRecord:
        """A version (the latest when None); AssetNotFound naming the versions there are."""

    @abc.abstractmethod
    def list_models(
        self, name: str | None = None, run_id: str | None = None, latest: bool = False
    ) -> list[ModelRecord]:
        """Models, newest version first within a name, names sorted."""

    @abc.abstractmethod
    def update_model(
        self,
        name: str,
        version: int,
        *,
        description: str | None = None,
        tags: Mapping[str, str | None] | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> ModelRecord:
        """Change description and tags; add properties (an existing one cannot change)."""

    @abc.abstractmethod
    def delete_model(self, name: str, version: int) -> bool: ...

    # lineage ----------------------------------------------------------------------------
    @abc.abstractmethod
    def add_run_datasets(self, records: Sequence[RunDatasetRecord]) -> None:
        """Record what runs read and wrote (a record of the same run, direction and name is
        replaced)."""

    @abc.abstractmethod
    def list_run_datasets(
        self, run_id: str | None = None, dataset_id: str | None = None
    ) -> list[RunDatasetRecord]: ...


def asset_store(store: RunStore) -> AssetStore:
    """The asset half of a workspace's store (the SQL stores keep both)."""
    if isinstance(store, AssetStore):
        return store
    from ferry.tracking.sql import SqlRunStore

    if isinstance(store, SqlRunStore):
        found = _ASSETS.get(store)
        if found is None:
            from ferry.tracking.sql_assets import SqlAssetStore

            found = _ASSETS[store] = SqlAssetStore(store)
        return found
    raise StoreError(
        f"this workspace's store ({type(store).__name__}) does not keep datastores, datasets or "
        "models; use a local workspace or a ferry server that keeps them"
    )


#: the asset store of each open run store (they share its engine)
_ASSETS: weakref.WeakKeyDictionary[RunStore, AssetStore] = weakref.WeakKeyDictionary()
