"""``azureml.core.compute``: compute targets as the reference names them."""

from ferry.compute import ComputeTarget, RayCluster, RemoteCompute, SparkCompute

__all__ = ["ComputeTarget", "RayCluster", "RemoteCompute", "SparkCompute"]
