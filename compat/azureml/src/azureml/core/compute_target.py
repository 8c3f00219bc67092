"""``azureml.core.compute_target``."""

from ferry.errors import ComputeTargetException

__all__ = ["ComputeTargetException"]
