"""``azureml.core.compute.compute``."""

from ferry.compute import ComputeTarget

__all__ = ["ComputeTarget"]
