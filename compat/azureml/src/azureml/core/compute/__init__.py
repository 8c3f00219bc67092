"""``azureml.core.compute``: compute targets as the reference names them."""

from ferry.compute import ComputeTarget, RayCluster, RemoteCompute, SparkCompute
from ferry.compute_aml import AmlCompute
from ferry.compute_hdinsight import HDInsightCompute

__all__ = [
    "AmlCompute",
    "ComputeTarget",
    "HDInsightCompute",
    "RayCluster",
    "RemoteCompute",
    "SparkCompute",
]
