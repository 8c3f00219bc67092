"""``azureml.core.dataset``: ferry's Dataset (``Dataset.File``, ``Dataset.Tabular``)."""

from ferry.data import Dataset

__all__ = ["Dataset"]
