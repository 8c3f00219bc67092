"""``azureml.core.runconfig``: the run configuration and its sections."""

from ferry.data import DataReferenceConfiguration  # noqa: F401
from ferry.runconfig import *  # noqa: F403
from ferry.runconfig import (  # noqa: F401
    DockerConfiguration,
    HistoryConfiguration,
    MpiConfiguration,
    PyTorchConfiguration,
    RunConfiguration,
    SparkConfiguration,
    TensorflowConfiguration,
)
