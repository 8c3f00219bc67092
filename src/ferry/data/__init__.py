"""Datastores, datasets and output datasets: the data a run reads and writes.

The reference's names (``Datastore``, ``Dataset``, ``FileDataset``, ``TabularDataset``,
``DatasetConsumptionConfig``, ``OutputFileDatasetConfig``, ``DataReference``, ``DataType``) over
ferry's machinery: datastores are fsspec file systems (:mod:`.stores`; the workspace's own folder
by default, S3, Azure Blob), and a dataset version is a manifest of content hashes in the
workspace's blob store, like a snapshot (:mod:`.versions`).

Example::

    from ferry.data import Dataset
    ds = ws.get_default_datastore()
    ds.upload("data", target_path="diabetes", overwrite=True)
    diabetes = Dataset.File.from_files([(ds, "diabetes/")]).register(ws, "diabetes")
"""

from typing import TYPE_CHECKING

from ferry._lazy import lazy_names

# Imported when used: the machinery (targets, the supervisor) imports this package's machinery
# modules (stores, versions, views, publish) without loading the public classes.
_LAZY = {
    "DatasetConsumptionConfig": "ferry.data.consumption",
    "OutputFileDatasetConfig": "ferry.data.consumption",
    "Dataset": "ferry.data.dataset",
    "DataType": "ferry.data.dataset",
    "FileDataset": "ferry.data.dataset",
    "FileDatasetFactory": "ferry.data.dataset",
    "TabularDataset": "ferry.data.dataset",
    "TabularDatasetFactory": "ferry.data.dataset",
    "DataPath": "ferry.data.references",
    "DataReference": "ferry.data.references",
    "DataReferenceConfiguration": "ferry.data.references",
    "Datastore": "ferry.data.datastore",
    "DataPathNotFound": "ferry.data.errors",
    "DatasetChanged": "ferry.data.errors",
    "DatasetNotFound": "ferry.data.errors",
    "DatastoreAccessDenied": "ferry.data.errors",
    "DatastoreNotFound": "ferry.data.errors",
    "DatastoreUnavailable": "ferry.data.errors",
    "MountContext": "ferry.data.views",
}

if TYPE_CHECKING:
    from ferry.data.consumption import DatasetConsumptionConfig, OutputFileDatasetConfig
    from ferry.data.dataset import (
        Dataset,
        DataType,
        FileDataset,
        FileDatasetFactory,
        TabularDataset,
        TabularDatasetFactory,
    )
    from ferry.data.datastore import Datastore
    from ferry.data.errors import (
        DataPathNotFound,
        DatasetChanged,
        DatasetNotFound,
        DatastoreAccessDenied,
        DatastoreNotFound,
        DatastoreUnavailable,
    )
    from ferry.data.references import DataPath, DataReference, DataReferenceConfiguration
    from ferry.data.views import MountContext

__all__ = [
    "DataPath",
    "DataPathNotFound",
    "DataReference",
    "DataReferenceConfiguration",
    "DataType",
    "Dataset",
    "DatasetChanged",
    "DatasetConsumptionConfig",
    "DatasetNotFound",
    "Datastore",
    "DatastoreAccessDenied",
    "DatastoreNotFound",
    "DatastoreUnavailable",
    "FileDataset",
    "FileDatasetFactory",
    "MountContext",
    "OutputFileDatasetConfig",
    "TabularDataset",
    "TabularDatasetFactory",
]

__getattr__, __dir__ = lazy_names(globals(), _LAZY)
