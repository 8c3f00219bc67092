"""``azureml.data.dataset_consumption_config``."""

from ferry.data import DatasetConsumptionConfig

__all__ = ["DatasetConsumptionConfig"]
