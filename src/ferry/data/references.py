"""References to data on a datastore, for a run's arguments and configuration: ``DataPath``,
the legacy ``DataReference`` (``ds.path('mnist').as_mount()``, ``str(ds.as_download())``) and
``DataReferenceConfiguration`` (``run_config.data_references[name]``), with the reference's
names. :mod:`ferry.data.bindings` turns each into a dataset input (or output) of the run.

Example::

    ref = ds.path("mnist").as_mount()        # str(ref) == "$AZUREML_DATAREFERENCE_<name>"
    rc.data_references = {ds.name: DataReferenceConfiguration(ds.name, "download", "diabetes")}
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from ferry.data.stores import clean_rel
from ferry.errors import ConfigError

if TYPE_CHECKING:
    from ferry.data.datastore import Datastore
    from ferry.workspace import Workspace


class DataPath:
    """A path on a datastore (the reference's ``azureml.data.datapath.DataPath``), for
    ``Dataset.File.from_files`` and ``upload_directory``'s ``target``."""

    def __init__(
        self, datastore: Datastore, path_on_datastore: str | None = None, name: str | None = None
    ) -> None:
        self.datastore = datastore
        self.path_on_datastore = clean_rel(path_on_datastore or "", "path_on_datastore")
        self.name = name

    def __repr__(self) -> str:
        return f"DataPath(datastore={self.datastore.name!r}, path={self.path_on_datastore!r})"


def _reference_name() -> str:
    """A new reference's name: the reference's ``uuid4().hex``, its first character a letter.

    The job receives the data under that name as an environment variable, which may not start
    with a digit; a bare hex started with one 10 times in 16, so ``ds.path('mnist').as_mount()``
    in a run's arguments (the 2019 tutorials) failed at submit more often than not.
    """
    name = uuid.uuid4().hex
    return name if name[0].isalpha() else "abcdef"[int(name[0]) % 6] + name[1:]


class DataReference:
    """The reference's legacy reference to a path on a datastore, for a run's arguments:
    ``str(ref)`` is ``$AZUREML_DATAREFERENCE_<name>``, which the job gets as the local path of
    the data (mounted or downloaded as a dataset)."""

    def __init__(
        self,
        datastore: Datastore,
        data_reference_name: str | None = None,
        path_on_datastore: str | None = None,
        mode: str = "mount",
        path_on_compute: str | None = None,
        overwrite: bool = False,
    ) -> None:
        if mode not in ("mount", "download", "upload"):
            raise ConfigError(f"mode must be 'mount', 'download' or 'upload', not {mode!r}")
        self.datastore = datastore
        self.path_on_datastore = path_on_datastore
        self.data_reference_name = data_reference_name or (
            _reference_name() if path_on_datastore else datastore.name
        )
        self.mode = mode
        self.path_on_compute = path_on_compute
        self.overwrite = overwrite

    def path(
        self, path: str | None = None, data_reference_name: str | None = None
    ) -> DataReference:
        joined = "/".join(p for p in (self.path_on_datastore, path) if p)
        return DataReference(self.datastore, data_reference_name, joined or None, self.mode)

    def as_mount(self) -> DataReference:
        return DataReference(
            self.datastore, self.data_reference_name, self.path_on_datastore, "mount"
        )

    def as_download(
        self, path_on_compute: str | None = None, overwrite: bool = False
    ) -> DataReference:
        return DataReference(
            self.datastore, self.data_reference_name, self.path_on_datastore, "download",
            path_on_compute, overwrite,
        )  # fmt: skip

    def as_upload(
        self, path_on_compute: str | None = None, overwrite: bool = False
    ) -> DataReference:
        return DataReference(
            self.datastore, self.data_reference_name, self.path_on_datastore, "upload",
            path_on_compute, overwrite,
        )  # fmt: skip

    def to_config(self) -> DataReferenceConfiguration:
        """The reference's form for ``run_config.data_references[name]``."""
        return DataReferenceConfiguration(
            self.datastore.name, self.mode, self.path_on_datastore, self.path_on_compute,
            self.overwrite,
        )  # fmt: skip

    def __str__(self) -> str:
        return f"$AZUREML_DATAREFERENCE_{self.data_reference_name}"

    def __repr__(self) -> str:
        return (
            f"DataReference(datastore={self.datastore.name!r}, path={self.path_on_datastore!r}, "
            f"mode={self.mode!r})"
        )


class DataReferenceConfiguration(dict[str, Any]):
    """A datastore path a run reads or writes, kept in ``run_config.data_references[name]``
    (the reference's ``azureml.core.runconfig.DataReferenceConfiguration``, the 2019 notebooks'
    way: ``str(ds.as_download())`` in the arguments becomes the local path of the data).

    It is its own dict form (``dataStoreName``, ``mode``, ``pathOnDataStore``, ``pathOnCompute``,
    ``overwrite``), so a run configuration holding one stores as JSON like any other.

    Example::

        rc.data_references = {ds.name: DataReferenceConfiguration(ds.name, "download", "diabetes")}
    """

    def __init__(
        self,
        datastore_name: str | None = None,
        mode: str = "mount",
        path_on_datastore: str | None = None,
        path_on_compute: str | None = None,
        overwrite: bool = False,
    ) -> None:
        if mode not in ("mount", "download", "upload"):
            raise ConfigError(f"mode must be 'mount', 'download' or 'upload', not {mode!r}")
        super().__init__(
            dataStoreName=datastore_name, mode=mode, pathOnDataStore=path_on_datastore,
            pathOnCompute=path_on_compute, overwrite=bool(overwrite),
        )  # fmt: skip

    @property
    def data_store_name(self) -> str | None:
        return self["dataStoreName"]  # type: ignore[no-any-return]

    @property
    def path_on_data_store(self) -> str | None:
        return self["pathOnDataStore"]  # type: ignore[no-any-return]

    @property
    def path_on_compute(self) -> str | None:
        return self["pathOnCompute"]  # type: ignore[no-any-return]

    @property
    def mode(self) -> str:
        return str(self["mode"])

    @property
    def overwrite(self) -> bool:
        return bool(self["overwrite"])

    def reference(self, workspace: Workspace, name: str) -> DataReference:
        """The ``DataReference`` called ``name`` that this configuration describes."""
        if not self.data_store_name:
            raise ConfigError(
                f"run_config.data_references[{name!r}] names no datastore; give "
                "DataReferenceConfiguration(datastore_name=…)"
            )
        from ferry.data.datastore import Datastore

        return DataReference(
            Datastore.get(workspace, self.data_store_name), name, self.path_on_data_store,
            self.mode, self.path_on_compute, self.overwrite,
        )  # fmt: skip

    def __repr__(self) -> str:
        return (
            f"DataReferenceConfiguration(datastore_name={self.data_store_name!r}, "
            f"mode={self.mode!r}, path_on_datastore={self.path_on_data_store!r})"
        )
