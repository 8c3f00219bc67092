"""Where a workspace's datastores are: the built-in default, the registered ones, the default.

Machinery over :class:`~ferry.spec.WorkspaceServices` (no public class): the public
:class:`~ferry.data.datastore.Datastore`, the dataset code and the targets all find a datastore
here, by name.

Example::

    store = open_datastore(ws, "workspaceblobstore")     # the workspace's own folder
    default_datastore_name(ws)                           # "workspaceblobstore" until set
"""

from __future__ import annotations

import os
from pathlib import Path

from ferry.data.errors import DatastoreNotFound
from ferry.data.stores import DEFAULT_NAME, DatastoreSpec, StoreFS, default_spec, open_store
from ferry.spec import WorkspaceServices
from ferry.tracking.assets import AssetStore, asset_store


def assets(ws: WorkspaceServices) -> AssetStore:
    return asset_store(ws.store)


def normalize_name(name: object, what: str = "datastore") -> str:
    """Datastore names are case-insensitive (the reference's rule): kept in lower case."""
    from ferry.errors import ConfigError

    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"a {what} name must be non-empty text, not {name!r}")
    return name.strip().lower()


def datastore_spec(ws: WorkspaceServices, name: str) -> DatastoreSpec:
    """The datastore called ``name`` (any case); DatastoreNotFound naming the registered ones."""
    key = normalize_name(name)
    record = assets(ws).get_datastore(key)
    if record is not None:
        return DatastoreSpec(record.name, record.kind, dict(record.config))
    if key == DEFAULT_NAME:
        return default_spec(Path(ws.path))
    known = ", ".join([DEFAULT_NAME, *(r.name for r in assets(ws).list_datastores())])
    raise DatastoreNotFound(
        f"there is no datastore named {name!r} in this workspace (datastores: {known}); "
        "register one with Datastore.register_azure_blob_container, register_s3 or "
        "register_local_folder"
    )


def all_specs(ws: WorkspaceServices) -> list[DatastoreSpec]:
    specs = {
        r.name: DatastoreSpec(r.name, r.kind, dict(r.config)) for r in assets(ws).list_datastores()
    }
    specs.setdefault(DEFAULT_NAME, default_spec(Path(ws.path)))
    return [specs[name] for name in sorted(specs)]


def default_datastore_name(ws: WorkspaceServices) -> str:
    return assets(ws).default_datastore() or DEFAULT_NAME


def open_datastore(ws: WorkspaceServices, name: str) -> StoreFS:
    """The file system of the datastore ``name``; the built-in default's folder is made on
    first use (private, like the rest of the workspace)."""
    spec = datastore_spec(ws, name)
    if spec.name == DEFAULT_NAME and spec.kind == "folder":
        os.makedirs(str(spec.config["path"]), mode=0o700, exist_ok=True)
    return open_store(spec, Path(ws.path))
