"""``azureml.core.workspace``."""

from ferry.workspace import Workspace

__all__ = ["Workspace"]
