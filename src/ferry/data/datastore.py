"""Datastore: where a workspace's data lives — its own folder by default, S3, Azure Blob.

Every workspace has ``workspaceblobstore`` (the reference's name), a folder inside the
workspace that needs no set-up. Others are registered by name; their settings are kept in the
workspace, their secrets never are (see :mod:`ferry.data.credentials`).

Example::

    ds = ws.get_default_datastore()
    ds.upload("data/", target_path="diabetes", overwrite=True, show_progress=True)
    s3 = Datastore.register_s3(ws, "raw", bucket_name="raw-data", endpoint="http://127.0.0.1:9000",
                               access_key_id="…", secret_access_key="…")
    Datastore.get(ws, "raw").download("local-copy", prefix="2024/")
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry.data import catalog, credentials, transfer
from ferry.data.stores import DEFAULT_NAME, DatastoreSpec, StoreFS, clean_rel, open_store
from ferry.errors import ConfigError
from ferry.tracking.assets import DatastoreRecord

if TYPE_CHECKING:
    from ferry.workspace import Workspace

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,254}$")
_TYPES = {"folder": "LocalFolder", "s3": "S3", "azureblob": "AzureBlob"}


class Datastore:
    """A datastore of a workspace (``Datastore(ws)`` is the default one, ``Datastore(ws, name)``
    the one of that name)."""

    def __init__(self, workspace: Workspace, name: str | None = None) -> None:
        self.workspace = workspace
        key = catalog.default_datastore_name(workspace) if name is None else name
        self._spec = catalog.datastore_spec(workspace, key)

    # finding and registering ------------------------------------------------------------------
    @staticmethod
    def get(workspace: Workspace, datastore_name: str) -> Datastore:
        """The datastore ``datastore_name`` (case-insensitive); DatastoreNotFound otherwise."""
        return Datastore(workspace, datastore_name)

    @staticmethod
    def get_default(workspace: Workspace) -> Datastore:
        return Datastore(workspace)

    @staticmethod
    def list(workspace: Workspace) -> dict[str, Datastore]:
        return {spec.name: Datastore._of(workspace, spec) for spec in catalog.all_specs(workspace)}

    @classmethod
    def _of(cls, workspace: Workspace, spec: DatastoreSpec) -> Datastore:
        obj = cls.__new__(cls)
        obj.workspace, obj._spec = workspace, spec
        return obj

    @staticmethod
    def register_azure_blob_container(
        workspace: Workspace,
        datastore_name: str,
        container_name: str,
        account_name: str,
        sas_token: str | None = None,
        account_key: str | None = None,
        protocol: str | None = None,
        endpoint: str | None = None,
        overwrite: bool = False,
        create_if_not_exists: bool = False,
        skip_validation: bool = False,
        blob_cache_timeout: int | None = None,
        grant_workspace_access: bool = False,
        subscription_id: str | None = None,
        resource_group: str | None = None,
    ) -> Datastore:
        """An Azure Blob container as a datastore. ``endpoint`` is the storage suffix
        (``core.windows.net``) or a whole blob endpoint URL (the storage emulator's
        ``http://127.0.0.1:10000/devstoreaccount1``). The key or token is kept in the
        workspace's credentials file, never in its database."""
        if not isinstance(container_name, str) or not container_name:
            raise ConfigError("container_name must be the container's name")
        if not isinstance(account_name, str) or not account_name:
            raise ConfigError("account_name must be the storage account's name")
        credential = "AccountKey" if account_key else "Sas" if sas_token else "None"
        config = {
            "container_name": container_name,
            "account_name": account_name,
            "protocol": protocol or "https",
            "endpoint": endpoint or "core.windows.net",
            "credential_type": credential,
        }
        secrets = {"account_key": account_key, "sas_token": sas_token}
        return Datastore._register(
            workspace, datastore_name, "azureblob", config, secrets,
            overwrite=overwrite, create=create_if_not_exists, validate=not skip_validation,
        )  # fmt: skip

    @staticmethod
    def register_s3(
        workspace: Workspace,
        datastore_name: str,
        bucket_name: str,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        endpoint: str | None = None,
        region: str | None = None,
        prefix: str | None = None,
        overwrite: bool = False,
        create_if_not_exists: bool = False,
        skip_validation: bool = False,
    ) -> Datastore:
        """An S3 bucket (AWS or any S3-compatible service at ``endpoint``) as a datastore,
        optionally below ``prefix``. Without keys, the usual AWS variables and files apply."""
        if not isinstance(bucket_name, str) or not bucket_name:
            raise ConfigError("bucket_name must be the bucket's name")
        config = {
            "bucket_name": bucket_name,
            "endpoint": endpoint,
            "region": region,
            "prefix": clean_rel(prefix or "", "prefix"),
            "credential_type": "AccessKey" if secret_access_key else "None",
        }
        secrets = {
            "access_key_id": access_key_id,
            "secret_access_key": secret_access_key,
            "session_token": session_token,
        }
        return Datastore._register(
            workspace, datastore_name, "s3", config, secrets,
            overwrite=overwrite, create=create_if_not_exists, validate=not skip_validation,
        )  # fmt: skip

    @staticmethod
    def register_local_folder(
        workspace: Workspace,
        datastore_name: str,
        path: str | os.PathLike[str],
        overwrite: bool = False,
        create_if_not_exists: bool = False,
    ) -> Datastore:
        """A folder on this machine as a datastore (ferry's addition)."""
        folder = Path(path).expanduser().resolve()
        return Datastore._register(
            workspace, datastore_name, "folder", {"path": str(folder)}, {},
            overwrite=overwrite, create=create_if_not_exists, validate=True,
        )  # fmt: skip

    @staticmethod
    def _register(
        workspace: Workspace,
        name: str,
        kind: str,
        config: dict[str, Any],
        secrets: dict[str, str | None],
        *,
        overwrite: bool,
        create: bool,
        validate: bool,
    ) -> Datastore:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(
                f"datastore name {name!r} is not valid: use letters, digits, '_' and '-' "
                "(case-insensitive)"
            )
        key = name.lower()
        if key == DEFAULT_NAME:
            raise ConfigError(
                f"{DEFAULT_NAME!r} is the workspace's own datastore; pick another name"
            )
        store_ = catalog.assets(workspace)
        if not overwrite and store_.get_datastore(key) is not None:
            raise ConfigError(
                f"a datastore named {key!r} is registered already; pass overwrite=True to replace it"
            )
        spec = DatastoreSpec(key, kind, config)
        given = {k: v for k, v in secrets.items() if v}
        previous = credentials.secrets_for(workspace.path, key) if given else {}
        if given:
            credentials.save_secrets(workspace.path, key, given)
        try:
            if validate or create:
                store = open_store(spec, workspace.path)
                if create:
                    store.create_root()
                store.probe()
            store_.save_datastore(DatastoreRecord(key, kind, config), overwrite=overwrite)
        except BaseException:
            if given:  # a datastore that was not registered keeps no secret
                credentials.save_secrets(workspace.path, key, previous)
            raise
        return Datastore._of(workspace, spec)

    def set_as_default(self) -> None:
        """Make this datastore the workspace's default (``ws.get_default_datastore()``)."""
        self.workspace.set_default_datastore(self.name)

    def unregister(self) -> None:
        """Forget this datastore and its secrets (its data stays where it is)."""
        if self.name == DEFAULT_NAME:
            raise ConfigError(f"{DEFAULT_NAME!r} is the workspace's own datastore; it stays")
        catalog.assets(self.workspace).delete_datastore(self.name)
        credentials.forget_secrets(self.workspace.path, self.name)

    # attributes -------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._spec.name

    @property
    def datastore_type(self) -> str:
        return _TYPES.get(self._spec.kind, self._spec.kind)

    @property
    def container_name(self) -> str | None:
        c = self._spec.config
        return (
            c.get("container_name")
            or c.get("bucket_name")
            or (self.name if self.is_folder else None)
        )

    @property
    def bucket_name(self) -> str | None:
        return self._spec.config.get("bucket_name")

    @property
    def account_name(self) -> str | None:
        return self._spec.config.get("account_name") or ("local" if self.is_folder else None)

    @property
    def protocol(self) -> str | None:
        return self._spec.config.get("protocol")

    @property
    def endpoint(self) -> str | None:
        return self._spec.config.get("endpoint")

    @property
    def credential_type(self) -> str:
        return str(self._spec.config.get("credential_type") or "None")

    @property
    def path_on_disk(self) -> str | None:
        """A folder datastore's folder (None for remote kinds)."""
        return str(self._spec.config["path"]) if self.is_folder else None

    @property
    def is_folder(self) -> bool:
        return self._spec.kind == "folder"

    @property
    def spec(self) -> DatastoreSpec:
        return self._spec

    def get_details(self) -> dict[str, Any]:
        """What the workspace keeps of this datastore: never a secret."""
        return {"name": self.name, "datastoreType": self.datastore_type, **dict(self._spec.config)}

    def _store(self) -> StoreFS:
        return catalog.open_datastore(self.workspace, self.name)

    # data ------------------------------------------------------------------------------------
    def upload(
        self,
        src_dir: str | os.PathLike[str],
        target_path: str | None = None,
        overwrite: bool = False,
        show_progress: bool = True,
    ) -> DataReference:
        """Upload a folder, keeping its layout under ``target_path``. Existing targets are
        skipped unless ``overwrite``; then unchanged ones are skipped too (nothing moves)."""
        pairs = transfer.files_of(Path(src_dir), target_path)
        transfer.upload(
            self.workspace, self._store(), pairs, overwrite=overwrite, show_progress=show_progress
        )
        return DataReference(self, path_on_datastore=target_path)

    def upload_files(
        self,
        files: Iterable[str | os.PathLike[str]],
        relative_root: str | os.PathLike[str] | None = None,
        target_path: str | None = None,
        overwrite: bool = False,
        show_progress: bool = True,
    ) -> DataReference:
        """Upload files, each to ``target_path/<its path relative to relative_root>``
        (``relative_root`` defaults to the files' common folder)."""
        paths = [Path(f).expanduser().resolve() for f in files]
        if not paths:
            raise ConfigError("upload_files needs at least one file")
        root = (
            Path(relative_root).expanduser().resolve()
            if relative_root
            else Path(os.path.commonpath([str(p.parent) for p in paths]))
        )
        target = clean_rel(target_path or "", "target_path")
        pairs = []
        for path in paths:
            try:
                rel = path.relative_to(root).as_posix()
            except ValueError:
                raise ConfigError(f"{path} is not under relative_root {root}") from None
            pairs.append((path, f"{target}/{rel}" if target else rel))
        transfer.upload(
            self.workspace, self._store(), pairs, overwrite=overwrite, show_progress=show_progress
        )
        return DataReference(self, path_on_datastore=target_path)

    def download(
        self,
        target_path: str | os.PathLike[str],
        prefix: str | None = None,
        overwrite: bool = False,
        show_progress: bool = True,
    ) -> int:
        """Copy the files under ``prefix`` to ``target_path/<path>``; returns how many."""
        return transfer.download(
            self._store(),
            Path(target_path),
            prefix,
            overwrite=overwrite,
            show_progress=show_progress,
        )

    def path(
        self, path: str | None = None, data_reference_name: str | None = None
    ) -> DataReference:
        return DataReference(self, data_reference_name, path_on_datastore=path)

    def as_mount(self) -> DataReference:
        return DataReference(self, mode="mount")

    def as_download(self, path_on_compute: str | None = None) -> DataReference:
        return DataReference(self, mode="download", path_on_compute=path_on_compute)

    def __repr__(self) -> str:
        return f"Datastore(name={self.name!r}, type={self.datastore_type!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Datastore) and other._spec == self._spec

    def __hash__(self) -> int:
        return hash(self.name)


#: the reference's other datastore kinds: refused with what to use instead (not AttributeError)
_OTHER_KINDS = {
    "register_azure_file_share": "Azure file shares",
    "register_azure_data_lake": "Azure Data Lake Gen1 stores",
    "register_azure_data_lake_gen2": "Azure Data Lake Gen2 stores",
    "register_azure_sql_database": "Azure SQL databases",
    "register_azure_postgre_sql": "PostgreSQL databases",
    "register_azure_my_sql": "MySQL databases",
    "register_dbfs": "Databricks file systems",
    "register_hdfs": "HDFS stores",
}


def _refusal(method: str, kind: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> Datastore:
        raise ConfigError(
            f"Datastore.{method}: {kind} are not a datastore kind of ferry (it keeps data in "
            "Azure Blob containers, S3 buckets and local folders); copy the data to one and "
            "register it with Datastore.register_azure_blob_container, register_s3 or "
            "register_local_folder"
        )

    refuse.__name__ = method
    return staticmethod(refuse)


for _method, _kind in _OTHER_KINDS.items():
    setattr(Datastore, _method, _refusal(_method, _kind))


# the references live in their own module; imported here, where callers have found them
from ferry.data.references import DataPath, DataReference, DataReferenceConfiguration  # noqa: E402

__all__ = ["DataPath", "DataReference", "DataReferenceConfiguration", "Datastore"]
