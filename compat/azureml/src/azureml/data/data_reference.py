"""``azureml.data.data_reference``."""

from ferry.data import DataReference

__all__ = ["DataReference"]
