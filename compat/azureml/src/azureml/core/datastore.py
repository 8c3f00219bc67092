"""``azureml.core.datastore``: ferry's Datastore (the workspace's own, folders, S3, Azure Blob)."""

from ferry.data import Datastore

__all__ = ["Datastore"]
