"""``azureml.train.hyperdrive.runconfig``: ``HyperDriveConfig``, ``PrimaryMetricGoal``."""

from ferry.hyperdrive.config import HyperDriveConfig, PrimaryMetricGoal

HyperDriveRunConfig = HyperDriveConfig  # the reference's older name

__all__ = ["HyperDriveConfig", "HyperDriveRunConfig", "PrimaryMetricGoal"]
