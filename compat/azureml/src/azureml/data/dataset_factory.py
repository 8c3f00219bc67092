"""``azureml.data.dataset_factory``: the factories behind ``Dataset.File``/``Dataset.Tabular``
and ``DataType``."""

from ferry.data import DataType, FileDatasetFactory, TabularDatasetFactory

__all__ = ["DataType", "FileDatasetFactory", "TabularDatasetFactory"]
