"""``azureml.data.tabular_dataset``."""

from ferry.data import TabularDataset

__all__ = ["TabularDataset"]
