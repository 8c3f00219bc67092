"""``azureml.data``: ferry's datasets, their run configurations and the legacy DataReference."""

from ferry.data import (
    DataReference,
    DatasetConsumptionConfig,
    DataType,
    FileDataset,
    OutputFileDatasetConfig,
    TabularDataset,
)

__all__ = [
    "DataReference",
    "DataType",
    "DatasetConsumptionConfig",
    "FileDataset",
    "OutputFileDatasetConfig",
    "TabularDataset",
]
