"""``azureml.data.file_dataset``."""

from ferry.data import FileDataset

__all__ = ["FileDataset"]
