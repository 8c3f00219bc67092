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

from ferry.data.consumption import DatasetConsumptionConfig, OutputFileDatasetConfig
from ferry.data.dataset import (
    Dataset,
    DataType,
    FileDataset,
    FileDatasetFactory,
    TabularDataset,
    TabularDatasetFactory,
)
from ferry.data.datastore import DataPath, DataReference, Datastore
from ferry.data.errors import (
    DataPathNotFound,
    DatasetChanged,
    DatasetNotFound,
    DatastoreAccessDenied,
    DatastoreNotFound,
    DatastoreUnavailable,
)
from ferry.data.views import MountContext

__all__ = [
    "DataPath",
    "DataPathNotFound",
    "DataReference",
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
