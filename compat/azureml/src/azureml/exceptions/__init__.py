"""``azureml.exceptions``: the reference's exception names, ferry's error tree."""

from ferry.errors import ActivityFailedException, ConfigError, FerryError, RunFailed
from ferry.errors import ConfigError as ExperimentExecutionException
from ferry.errors import ConfigError as RunConfigurationException
from ferry.errors import ConfigError as UserErrorException
from ferry.errors import ConfigError as WorkspaceException
from ferry.errors import FerryError as AzureMLException
from ferry.errors import SnapshotError as SnapshotException
from ferry.errors import TargetError as ComputeTargetException

__all__ = [
    "ActivityFailedException",
    "AzureMLException",
    "ComputeTargetException",
    "ConfigError",
    "ExperimentExecutionException",
    "FerryError",
    "RunConfigurationException",
    "RunFailed",
    "SnapshotException",
    "UserErrorException",
    "WorkspaceException",
]
