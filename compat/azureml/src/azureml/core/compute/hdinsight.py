"""``azureml.core.compute.hdinsight``."""

from ferry.compute_hdinsight import HDInsightAttachConfiguration, HDInsightCompute

__all__ = ["HDInsightAttachConfiguration", "HDInsightCompute"]
