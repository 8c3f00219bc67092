"""``azureml.data.output_dataset_config``."""

from ferry.data import OutputFileDatasetConfig

__all__ = ["OutputFileDatasetConfig"]
