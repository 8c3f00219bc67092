"""Dataset, FileDataset and TabularDataset: the reference's names over ferry's versions.

A dataset object is a definition (what it reads: datastore paths, URLs or local paths, and
how) and, once saved or registered, a version: the exact files and content hashes fixed then
(:mod:`ferry.data.versions`). Reading a registered version always gives its bytes — kept in the
workspace's blob store, or fetched and checked against their hashes — or fails naming the file
that changed; an unregistered dataset reads what its paths hold now.

Example::

    ds = Dataset.File.from_files(path=[(ws.get_default_datastore(), "mnist/**")])
    ds = ds.register(ws, "mnist", create_new_version=True)       # version 1, 2, …
    Dataset.get_by_name(ws, "mnist", version=1).download("data/")
    table = Dataset.Tabular.from_delimited_files([(store, "diabetes/*.csv")])
    train, test = table.random_split(0.8, seed=1)
    train.to_pandas_dataframe()
"""

from __future__ import annotations

import builtins
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry.data import catalog, definition, versions
from ferry.data.datastore import Datastore
from ferry.data.errors import DataPathNotFound, DatasetNotFound
from ferry.data.references import DataPath, DataReference
from ferry.data.stores import clean_rel
from ferry.errors import ConfigError
from ferry.tracking.assets import AssetNotFound, DatasetRecord

if TYPE_CHECKING:
    from ferry.data.consumption import DatasetConsumptionConfig
    from ferry.data.views import MountContext
    from ferry.workspace import Workspace

_INPUT_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_URL_SCHEMES = ("http", "https", "s3", "az", "abfs", "abfss", "gs", "gcs")


class Dataset:
    """A dataset: ``Dataset.File`` and ``Dataset.Tabular`` make them; registered versions are
    found with :meth:`get_by_name`."""

    File: type[FileDatasetFactory]
    Tabular: type[TabularDatasetFactory]

    def __init__(
        self,
        workspace: Workspace | None,
        definition: Mapping[str, Any],
        record: DatasetRecord | None = None,
    ) -> None:
        self._workspace = workspace
        self._definition = dict(definition)
        self._record = record

    # finding ----------------------------------------------------------------------------------
    @staticmethod
    def get_by_name(workspace: Workspace, name: str, version: int | str = "latest") -> Dataset:
        """A registered version (``"latest"`` or a number); DatasetNotFound naming what exists.
        Inside a job (``run.experiment.workspace``): the run's input of that name."""
        if getattr(workspace, "_ferry_job", False):
            from ferry.runtime.datasets import job_dataset

            return job_dataset(name, "name")  # type: ignore[no-any-return]
        if version == "latest":
            number = None
        elif isinstance(version, int) and not isinstance(version, bool) and version >= 1:
            number = version
        elif isinstance(version, str) and version.isdigit():
            number = int(version)
        else:
            raise ConfigError(f"version must be 'latest' or a number ≥ 1, not {version!r}")
        try:
            record = catalog.assets(workspace).get_dataset(name, number)
        except AssetNotFound as exc:
            raise DatasetNotFound(str(exc)) from None
        return _of_record(workspace, record)

    @staticmethod
    def get_by_id(workspace: Workspace, id: str) -> Dataset:
        """A dataset by id; inside a job (``run.experiment.workspace``), the run's input whose
        id (or the path its argument was given) it is."""
        if getattr(workspace, "_ferry_job", False):
            from ferry.runtime.datasets import job_dataset

            return job_dataset(id, "id")  # type: ignore[no-any-return]
        try:
            return _of_record(workspace, catalog.assets(workspace).get_dataset_by_id(id))
        except AssetNotFound as exc:
            raise DatasetNotFound(str(exc)) from None

    @staticmethod
    def get_all(workspace: Workspace) -> dict[str, Dataset]:
        """The latest version of every registered dataset."""
        assets = catalog.assets(workspace)
        return {
            name: _of_record(workspace, assets.get_dataset(name)) for name in assets.list_datasets()
        }

    # identity ---------------------------------------------------------------------------------
    @property
    def id(self) -> str | None:
        return self._record.id if self._record else None

    @property
    def name(self) -> str | None:
        return self._record.name if self._record else None

    @property
    def version(self) -> int | None:
        return self._record.version if self._record else None

    @property
    def description(self) -> str | None:
        return self._record.description if self._record else None

    @property
    def tags(self) -> dict[str, str | None]:
        return dict(self._record.tags) if self._record else {}

    @property
    def definition(self) -> dict[str, Any]:
        """The dataset's definition (plain data; see :mod:`ferry.data.definition`)."""
        return dict(self._definition)

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            from ferry.workspace import Workspace

            self._workspace = Workspace.from_config()
        return self._workspace

    @property
    def record(self) -> DatasetRecord | None:
        """The saved version this object is (None while it is only a definition)."""
        return self._record

    # registering ------------------------------------------------------------------------------
    def register(
        self,
        workspace: Workspace,
        name: str,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        create_new_version: bool = False,
    ) -> Dataset:
        """Fix the files the dataset holds now and register them as ``name``'s next version.

        The same content and definition as the latest version gives that version back; another
        content under a taken name needs ``create_new_version=True``.
        """
        _check_asset_name(name)
        self._workspace = workspace
        record, _ = versions.snapshot_dataset(workspace, self._definition)
        from dataclasses import replace

        clean_tags = {str(k): None if v is None else str(v) for k, v in (tags or {}).items()}
        record = replace(record, name=name, description=description, tags=clean_tags)
        saved = catalog.assets(workspace).register_dataset(
            record, create_new_version=create_new_version
        )
        return _of_record(workspace, saved)

    def update(
        self, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> Dataset:
        record = self._registered("update")
        clean = (
            None
            if tags is None
            else {str(k): None if v is None else str(v) for k, v in tags.items()}
        )
        self._record = catalog.assets(self.workspace).update_dataset(
            record.id, description=description, tags=clean
        )
        return self

    def add_tags(self, tags: Mapping[str, Any]) -> Dataset:
        return self.update(tags={**self.tags, **{str(k): v for k, v in tags.items()}})

    def remove_tags(self, tags: Iterable[str]) -> Dataset:
        gone = {tags} if isinstance(tags, str) else set(tags)
        return self.update(tags={k: v for k, v in self.tags.items() if k not in gone})

    def unregister_all_versions(self) -> None:
        """Forget the name; the versions stay for the runs and models that used them."""
        record = self._registered("unregister")
        catalog.assets(self.workspace).unregister_dataset(str(record.name))

    def _registered(self, what: str) -> DatasetRecord:
        if self._record is None or self._record.name is None:
            raise ConfigError(f"only a registered dataset can be {what}d; register it first")
        return self._record

    # content ----------------------------------------------------------------------------------
    def _version(self, keep_remote: bool = True) -> DatasetRecord:
        """This version, or (unregistered) what the definition holds now, saved unnamed."""
        if self._record is not None:
            return self._record
        record, _ = versions.snapshot_dataset(
            self.workspace, self._definition, keep_remote=keep_remote
        )
        return record

    def _local_files(self) -> tuple[DatasetRecord, list[tuple[str, str]]]:
        """(version, [(dataset path, local blob path)]): every byte on this machine."""
        record = self._version()
        manifest = versions.ensure_local(self.workspace, record)
        blobs = self.workspace.blobs
        return record, [(rel, str(blobs.path(e.digest))) for rel, e in manifest.files()]

    def _paths(self) -> list[str]:
        if self._record is not None:
            listing = versions.load_listing(self.workspace, self._record)
            return [rel for rel, _ in listing.manifest.files()]
        return [f.rel for f in versions.list_files(self.workspace, self._definition)]

    def _derived(self, op: Mapping[str, Any]) -> Dataset:
        base = dict(self._definition)
        if self._record is not None:  # a version's files are fixed: derive from them
            base["base"] = self._record.id
            base["base_transforms"] = len(base.get("transforms") or [])
        return type(self)(self._workspace, definition.with_transform(base, op))

    def skip(self, count: int) -> Dataset:
        return self._derived({"op": "skip", "count": definition.check_count(count, "count")})

    def take(self, count: int) -> Dataset:
        return self._derived({"op": "take", "count": definition.check_count(count, "count")})

    def take_sample(self, probability: float, seed: int | None = None) -> Dataset:
        p = definition.check_fraction(probability, "probability")
        return self._derived({"op": "sample", "probability": p, "seed": _seed(seed)})

    def random_split(self, percentage: float, seed: int | None = None) -> tuple[Dataset, Dataset]:
        """Two datasets: about ``percentage`` of the items first, the rest second (a seed is
        chosen and kept when none is given, so the halves stay complementary)."""
        p = definition.check_fraction(percentage, "percentage")
        chosen = _seed(seed)
        return (
            self._derived({"op": "split", "percentage": p, "seed": chosen, "part": 0}),
            self._derived({"op": "split", "percentage": p, "seed": chosen, "part": 1}),
        )

    # runs ------------------------------------------------------------------------------------
    def as_named_input(self, name: str) -> DatasetConsumptionConfig:
        """This dataset as the run input ``name`` (then ``.as_mount()``/``.as_download()``)."""
        from ferry.data.consumption import DatasetConsumptionConfig

        if not isinstance(name, str) or not _INPUT_NAME.match(name):
            raise ConfigError(
                f"input name {name!r} is not valid: it becomes an environment variable, so use "
                "letters, digits and '_', not starting with a digit"
            )
        return DatasetConsumptionConfig(name, self)

    def _auto_name(self) -> str:
        import uuid

        return f"input__{(self.id or uuid.uuid4().hex).replace('-', '')[:8]}"

    def __repr__(self) -> str:
        kind = type(self).__name__
        if self._record is not None and self._record.name:
            return f"{kind}(name={self.name!r}, version={self.version}, id={self.id!r})"
        return f"{kind}(sources={self._definition.get('sources')!r})"


class FileDataset(Dataset):
    """Files from datastores, URLs or local paths."""

    def to_path(self) -> builtins.list[str]:
        """The dataset's file paths, as a mount or download lays them out (``/a/b.csv``)."""
        return ["/" + rel for rel in self._paths()]

    def download(
        self,
        target_path: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
        ignore_not_found: bool = False,
    ) -> builtins.list[str]:
        """Copy the files into ``target_path`` (a new temporary folder by default); an
        existing file is an error unless ``overwrite``. Returns the local paths."""
        target = Path(target_path).expanduser() if target_path else Path(tempfile.mkdtemp())
        _, files = self._local_files()
        out = []
        for rel, blob in files:
            dest = target / rel
            if dest.exists() or dest.is_symlink():
                if not overwrite:
                    raise ConfigError(f"{dest} exists already; pass overwrite=True to replace it")
                dest.unlink()
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(blob, dest)
            out.append(str(dest))
        return out

    def mount(self, mount_point: str | os.PathLike[str] | None = None, **_: Any) -> MountContext:
        """A read-only view of the files at ``mount_point`` (links into the workspace's blob
        store: nothing is copied). Use as ``with ds.mount() as ctx:`` or ``start()``/``stop()``."""
        from ferry.data.views import MountContext

        return MountContext(self, mount_point)

    def as_mount(self, path_on_compute: str | None = None) -> DatasetConsumptionConfig:
        return self.as_named_input(self._auto_name()).as_mount(path_on_compute)

    def as_download(self, path_on_compute: str | None = None) -> DatasetConsumptionConfig:
        return self.as_named_input(self._auto_name()).as_download(path_on_compute)


class TabularDataset(Dataset):
    """Rows of delimited or parquet files."""

    def to_pandas_dataframe(
        self, on_error: str = "null", out_of_range_datetime: str = "null"
    ) -> Any:
        from ferry.runtime.tabular import read_table

        _, files = self._local_files()
        fmt = self._definition.get("format") or {}
        return read_table([b for _, b in files], [r for r, _ in files], fmt, self._row_transforms())

    def _row_transforms(self) -> builtins.list[dict[str, Any]]:
        return [dict(op) for op in self._definition.get("transforms") or []]

    def keep_columns(self, columns: str | Iterable[str], validate: bool = False) -> TabularDataset:
        names = [columns] if isinstance(columns, str) else list(columns)
        return self._derived({"op": "keep_columns", "columns": names})  # type: ignore[return-value]

    def drop_columns(self, columns: str | Iterable[str]) -> TabularDataset:
        names = [columns] if isinstance(columns, str) else list(columns)
        return self._derived({"op": "drop_columns", "columns": names})  # type: ignore[return-value]


class DataType:
    """Column types for ``set_column_types`` (the reference's ``DataType``)."""

    def __init__(self, kind: str, formats: builtins.list[str] | None = None) -> None:
        self.kind, self.formats = kind, formats

    @staticmethod
    def to_string() -> DataType:
        return DataType("string")

    @staticmethod
    def to_long() -> DataType:
        return DataType("long")

    @staticmethod
    def to_float(decimal_mark: str = ".") -> DataType:
        return DataType("float")

    @staticmethod
    def to_bool() -> DataType:
        return DataType("bool")

    @staticmethod
    def to_datetime(formats: str | builtins.list[str] | None = None) -> DataType:
        return DataType("datetime", [formats] if isinstance(formats, str) else formats)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "formats": self.formats}


class FileDatasetFactory:
    """``Dataset.File``: FileDatasets from paths, and uploads that become one."""

    @staticmethod
    def from_files(
        path: Any, validate: bool = True, partition_format: str | None = None, is_file: bool = False
    ) -> FileDataset:
        """Files at ``path``: ``(datastore, "folder/**")``, a list of those, a URL, a
        ``DataReference``/``DataPath``, or a local path. With ``validate`` the paths must match
        a file now (DataPathNotFound otherwise)."""
        workspace, sources = parse_sources(path)
        ds = FileDataset(workspace, definition.new_definition("file", sources))
        if validate:
            versions.list_files(ds.workspace, ds._definition)
        return ds

    @staticmethod
    def upload_directory(
        src_dir: str | os.PathLike[str],
        target: Any,
        pattern: str | None = None,
        overwrite: bool = False,
        show_progress: bool = True,
    ) -> FileDataset:
        """Upload a folder to ``target`` (``(datastore, "path")``) and return a FileDataset
        of what was uploaded (unregistered). Files matching ``pattern`` only, when given."""
        import fnmatch

        from ferry.data import transfer

        store, prefix = _target(target)
        pairs = transfer.files_of(Path(src_dir), prefix)
        if pattern:
            root = Path(src_dir).expanduser()
            pairs = [
                p for p in pairs if fnmatch.fnmatch(p[0].relative_to(root).as_posix(), pattern)
            ]
        if not pairs:
            raise DataPathNotFound(
                f"nothing to upload from {str(src_dir)!r}"
                + (f" matching {pattern!r}" if pattern else "")
            )
        transfer.upload(
            store.workspace, store._store(), pairs, overwrite=overwrite, show_progress=show_progress
        )
        return FileDataset(
            store.workspace,
            definition.new_definition("file", [{"datastore": store.name, "path": prefix}]),
        )


class TabularDatasetFactory:
    """``Dataset.Tabular``: TabularDatasets from delimited or parquet files."""

    @staticmethod
    def from_delimited_files(
        path: Any,
        validate: bool = True,
        include_path: bool = False,
        infer_column_types: bool = True,
        set_column_types: Mapping[str, Any] | None = None,
        separator: str = ",",
        header: Any = True,
        partition_format: str | None = None,
        support_multi_line: bool = False,
        empty_as_string: bool = False,
        encoding: str = "utf8",
    ) -> TabularDataset:
        fmt = {
            **definition.DELIMITED_DEFAULTS,
            "separator": separator,
            "header": _header(header),
            "encoding": encoding,
            "infer_column_types": bool(infer_column_types),
            "set_column_types": _column_types(set_column_types),
            "include_path": bool(include_path),
            "support_multi_line": bool(support_multi_line),
            "empty_as_string": bool(empty_as_string),
            "partition_format": partition_format,
        }
        return _tabular(path, fmt, validate)

    @staticmethod
    def from_parquet_files(
        path: Any,
        validate: bool = True,
        include_path: bool = False,
        set_column_types: Mapping[str, Any] | None = None,
        partition_format: str | None = None,
    ) -> TabularDataset:
        fmt = {
            **definition.PARQUET_DEFAULTS,
            "include_path": bool(include_path),
            "set_column_types": _column_types(set_column_types),
            "partition_format": partition_format,
        }
        return _tabular(path, fmt, validate)

    @staticmethod
    def from_json_lines_files(path: Any, *args: Any, **kwargs: Any) -> TabularDataset:
        """The reference reads JSON lines files too; ferry's tables are CSV or parquet."""
        raise ConfigError(
            "Dataset.Tabular.from_json_lines_files: ferry's tabular datasets read delimited "
            "(CSV) and parquet files; convert the JSON lines (pandas.read_json(path, "
            "lines=True).to_parquet(…)) and use from_parquet_files, or read them as a "
            "Dataset.File in the script"
        )

    @staticmethod
    def from_sql_query(query: Any, *args: Any, **kwargs: Any) -> TabularDataset:
        """The reference queries SQL datastores; ferry has none."""
        raise ConfigError(
            "Dataset.Tabular.from_sql_query: ferry has no SQL datastores; export the query's "
            "rows to CSV or parquet on a datastore and use from_delimited_files or "
            "from_parquet_files, or register_pandas_dataframe(pandas.read_sql(…), …)"
        )

    @staticmethod
    def register_pandas_dataframe(
        dataframe: Any,
        target: Any,
        name: str,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        show_progress: bool = True,
    ) -> TabularDataset:
        """Write ``dataframe`` as parquet under a new folder ``<target>/<uuid>/`` of the
        datastore and register it as ``name``'s next version (the reference's AutoML and
        model-deployment notebooks' way to make a tabular dataset from memory)."""
        import uuid

        import pandas as pd  # type: ignore[import-untyped]

        from ferry.data import transfer

        if not isinstance(dataframe, pd.DataFrame):
            raise ConfigError(
                f"dataframe must be a pandas DataFrame, not {type(dataframe).__name__}"
            )
        if not isinstance(name, str):
            raise ConfigError(f"name must be text, not {name!r}")
        _check_asset_name(name)
        store, prefix = _target(target)
        folder = "/".join(p for p in (prefix, str(uuid.uuid4())) if p)
        with tempfile.TemporaryDirectory(prefix="ferry-frame-") as tmp:
            dataframe.to_parquet(Path(tmp, "part-00000.parquet"), index=False)
            transfer.upload(
                store.workspace, store._store(), transfer.files_of(Path(tmp), folder),
                overwrite=True, show_progress=show_progress,
            )  # fmt: skip
        dataset = TabularDatasetFactory.from_parquet_files((store, folder + "/"))
        registered = dataset.register(
            store.workspace, name, description=description, tags=tags, create_new_version=True
        )
        assert isinstance(registered, TabularDataset)
        return registered


Dataset.File = FileDatasetFactory
Dataset.Tabular = TabularDatasetFactory


def _tabular(path: Any, fmt: dict[str, Any], validate: bool) -> TabularDataset:
    workspace, sources = parse_sources(path)
    ds = TabularDataset(workspace, definition.new_definition("tabular", sources, fmt))
    if validate:
        versions.list_files(ds.workspace, ds._definition)
    return ds


def _header(header: Any) -> bool:
    if isinstance(header, bool):
        return header
    text = str(getattr(header, "name", header)).lower()
    return text not in ("no_headers", "none", "false", "0")


def _column_types(types: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not types:
        return None
    out = {}
    for column, kind in types.items():
        out[str(column)] = kind.to_dict() if isinstance(kind, DataType) else {"type": str(kind)}
    return out


def _seed(seed: int | None) -> int:
    if seed is None:
        return definition.new_seed()
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be a whole number, not {seed!r}")
    return seed


#: a dataset's name: the reference's service takes spaces and punctuation (its labs register
#: 'diabetes dataset' and 'diabetes file dataset'); no control characters, no trailing space
_DATASET_NAME = re.compile(r"^[A-Za-z0-9](?:[^\x00-\x1f\x7f]{0,253}[^\x00-\x20\x7f])?$")


def _check_asset_name(name: object) -> str:
    if not isinstance(name, str) or not _DATASET_NAME.match(name):
        raise ConfigError(
            f"dataset name {name!r} is not valid: start with a letter or digit, at most 255 "
            "characters, no control characters and no space at the end"
        )
    return name


def _target(target: Any) -> tuple[Datastore, str]:
    if isinstance(target, DataReference | DataPath):
        return target.datastore, clean_rel(target.path_on_datastore or "", "target")
    if isinstance(target, tuple) and len(target) == 2 and isinstance(target[0], Datastore):
        return target[0], clean_rel(str(target[1] or ""), "target")
    if isinstance(target, Datastore):
        return target, ""
    raise ConfigError(
        "target must be (datastore, 'path on the datastore'), a DataPath or a DataReference"
    )


def parse_sources(path: Any) -> tuple[Workspace | None, builtins.list[dict[str, str]]]:
    """The definition's sources for a ``path`` argument, and the workspace its datastores
    belong to."""
    items = path if isinstance(path, builtins.list) else [path]
    if not items:
        raise ConfigError("path must name at least one file, folder or pattern")
    workspace = None
    sources: builtins.list[dict[str, str]] = []
    for item in items:
        if isinstance(item, DataReference):
            item = (item.datastore, item.path_on_datastore or "")
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], Datastore):
            store, rel = item
            workspace = workspace or store.workspace
            paths = rel if isinstance(rel, builtins.list) else [rel]
            for one in paths:
                sources.append({"datastore": store.name, "path": clean_rel(str(one or ""))})
        elif hasattr(item, "datastore") and hasattr(item, "path_on_datastore"):  # DataPath
            workspace = workspace or item.datastore.workspace
            sources.append(
                {"datastore": item.datastore.name, "path": clean_rel(item.path_on_datastore or "")}
            )
        elif isinstance(item, str | os.PathLike):
            text = os.fspath(item)
            scheme = text.split("://", 1)[0].lower() if "://" in text else ""
            if scheme in _URL_SCHEMES:
                sources.append({"url": text})
            elif scheme:
                raise ConfigError(
                    f"{text!r}: {scheme}:// URLs are not read directly; register the storage as "
                    "a datastore and give (datastore, 'path') instead"
                )
            else:
                sources.append({"local": str(Path(text).expanduser().absolute())})
        else:
            raise ConfigError(
                f"cannot read a dataset from {item!r}: give (datastore, 'path'), a list of those, "
                "a URL or a local path"
            )
    return workspace, sources


def _of_record(workspace: Workspace, record: DatasetRecord) -> Dataset:
    kind = TabularDataset if record.kind == "tabular" else FileDataset
    return kind(workspace, record.definition, record)
