"""``azureml.core.environment``."""

from ferry.environment import (
    ContainerRegistry,
    DockerBuildContext,
    DockerSection,
    Environment,
    PythonSection,
    SparkPackage,
    SparkSection,
)

__all__ = [
    "ContainerRegistry",
    "DockerBuildContext",
    "DockerSection",
    "Environment",
    "PythonSection",
    "SparkPackage",
    "SparkSection",
]
