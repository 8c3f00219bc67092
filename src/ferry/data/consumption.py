"""Datasets in runs: ``DatasetConsumptionConfig`` (an input) and ``OutputFileDatasetConfig``.

Placed in ``ScriptRunConfig(arguments=[…])`` they stand for local paths inside the job: an
input's argument is ``DatasetConsumptionConfig:<name>`` until the job starts, then the path where
the dataset is (a read-only view on the local target, a download into the host's cache on SSH
hosts and Ray nodes); an output's is ``DatasetOutputConfig:<name>``, a writable folder whose
files are uploaded to the destination and saved as a dataset version (registered when asked)
when the run completes. Inside the job ``Run.get_context().input_datasets[name]`` gives the
same path (a tabular dataset's rows with ``to_pandas_dataframe()``).

Example::

    mnist = Dataset.get_by_name(ws, "mnist")
    out = OutputFileDatasetConfig("prepared", destination=(ds, "prepared/{run-id}"))
    src = ScriptRunConfig("src", "prep.py", arguments=[
        "--data", mnist.as_named_input("mnist").as_mount(),
        "--out", out.register_on_complete("mnist-prepared")])
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ferry.data.stores import DEFAULT_NAME, clean_rel
from ferry.errors import ConfigError

if TYPE_CHECKING:
    from ferry.data.dataset import Dataset

_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
MECHANISMS = ("direct", "mount", "download")


def check_input_name(name: object, what: str = "input") -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"{what} name {name!r} is not valid: it becomes an environment variable, so use "
            "letters, digits and '_', not starting with a digit"
        )
    return name


class DatasetConsumptionConfig:
    """How a run consumes a dataset: its name, and ``direct``, ``mount`` or ``download``."""

    def __init__(
        self,
        name: str,
        dataset: Dataset,
        mode: str = "direct",
        path_on_compute: str | None = None,
    ) -> None:
        self.name = check_input_name(name)
        self.dataset = dataset
        if mode not in MECHANISMS:
            raise ConfigError(f"mode must be one of {MECHANISMS}, not {mode!r}")
        self.mode = mode
        self.path_on_compute = path_on_compute

    def as_mount(self, path_on_compute: str | None = None) -> DatasetConsumptionConfig:
        """The files as a read-only folder (``path_on_compute``: where; absolute, or relative
        to the job's working folder)."""
        self._file_only("as_mount")
        return DatasetConsumptionConfig(self.name, self.dataset, "mount", path_on_compute)

    def as_download(self, path_on_compute: str | None = None) -> DatasetConsumptionConfig:
        """The files copied into a writable folder."""
        self._file_only("as_download")
        return DatasetConsumptionConfig(self.name, self.dataset, "download", path_on_compute)

    def _file_only(self, what: str) -> None:
        from ferry.data.dataset import TabularDataset

        if isinstance(self.dataset, TabularDataset):
            raise ConfigError(
                f"{what}() is for FileDatasets; a TabularDataset is given to a run as itself: "
                f"pass as_named_input({self.name!r}) and read it with "
                f"Run.get_context().input_datasets[{self.name!r}].to_pandas_dataframe()"
            )

    @property
    def placeholder(self) -> str:
        return f"DatasetConsumptionConfig:{self.name}"

    def __str__(self) -> str:
        return self.placeholder

    def __repr__(self) -> str:
        return f"DatasetConsumptionConfig(name={self.name!r}, mode={self.mode!r})"


class OutputFileDatasetConfig:
    """A folder the job writes; uploaded to ``destination`` and saved as a dataset version when
    the run completes (``register_on_complete`` names it).

    ``destination`` is ``(datastore, "path")`` — ``{run-id}`` and ``{output-name}`` in the path
    are filled in — by default the workspace's default datastore at
    ``dataset/{run-id}/{output-name}``. ``source`` is where the job writes (default: a folder
    in the run's folder).
    """

    def __init__(
        self,
        name: str | None = None,
        destination: Any = None,
        source: str | None = None,
        partition_format: str | None = None,
    ) -> None:
        self.name = check_input_name(name or f"output_{uuid.uuid4().hex[:8]}", "output")
        self.destination = _destination(destination)
        self.source = source
        self.partition_format = partition_format
        self.mode = "mount"
        self.overwrite = False
        self.registration: dict[str, Any] | None = None
        self.tabular: dict[str, Any] | None = None

    def _copy(self, **changes: Any) -> OutputFileDatasetConfig:
        out = OutputFileDatasetConfig.__new__(OutputFileDatasetConfig)
        out.__dict__.update({**self.__dict__, **changes})
        return out

    def as_mount(self) -> OutputFileDatasetConfig:
        return self._copy(mode="mount")

    def as_upload(
        self, overwrite: bool = False, source_globs: Any = None
    ) -> OutputFileDatasetConfig:
        return self._copy(mode="upload", overwrite=bool(overwrite))

    def register_on_complete(
        self, name: str, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> OutputFileDatasetConfig:
        """Register what the run wrote as ``name``'s next version when it completes."""
        from ferry.data.dataset import _check_asset_name

        _check_asset_name(name)
        clean = {str(k): None if v is None else str(v) for k, v in (tags or {}).items()}
        return self._copy(registration={"name": name, "description": description, "tags": clean})

    def read_delimited_files(
        self,
        include_path: bool = False,
        separator: str = ",",
        header: bool = True,
        partition_format: str | None = None,
        path_glob: str | None = None,
        set_column_types: Mapping[str, Any] | None = None,
    ) -> OutputFileDatasetConfig:
        """Save the output as a TabularDataset of delimited files."""
        from ferry.data.definition import DELIMITED_DEFAULTS

        fmt = {**DELIMITED_DEFAULTS, "separator": separator, "header": bool(header),
               "include_path": bool(include_path)}  # fmt: skip
        return self._copy(tabular=fmt)

    def read_parquet_files(self, include_path: bool = False) -> OutputFileDatasetConfig:
        from ferry.data.definition import PARQUET_DEFAULTS

        return self._copy(tabular={**PARQUET_DEFAULTS, "include_path": bool(include_path)})

    @property
    def placeholder(self) -> str:
        return f"DatasetOutputConfig:{self.name}"

    def __str__(self) -> str:
        return self.placeholder

    def __repr__(self) -> str:
        return f"OutputFileDatasetConfig(name={self.name!r}, destination={self.destination!r})"


def _destination(destination: Any) -> tuple[str, str]:
    """(datastore name, path template) of a destination argument."""
    from ferry.data.datastore import Datastore

    if destination is None:
        return DEFAULT_NAME, "dataset/{run-id}/{output-name}"
    if isinstance(destination, tuple) and len(destination) == 2:
        store, path = destination
        name = store.name if isinstance(store, Datastore) else store
        if not isinstance(name, str) or not name:
            raise ConfigError("destination must be (datastore, 'path on the datastore')")
        return name.lower(), clean_rel(str(path or ""), "destination path") or "{output-name}"
    raise ConfigError("destination must be (datastore, 'path on the datastore')")
