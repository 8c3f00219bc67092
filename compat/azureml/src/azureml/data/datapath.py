"""``azureml.data.datapath``."""

from ferry.data import DataPath

__all__ = ["DataPath"]
