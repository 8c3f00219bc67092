"""``azureml.train.hyperdrive.run``: ``HyperDriveRun`` (and ``PrimaryMetricGoal``)."""

from ferry.hyperdrive.config import PrimaryMetricGoal
from ferry.hyperdrive.run import HyperDriveRun

__all__ = ["HyperDriveRun", "PrimaryMetricGoal"]
