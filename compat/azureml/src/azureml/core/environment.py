"""``azureml.core.environment``."""

from ferry.environment import (
    DockerSection,
    Environment,
    PythonSection,
    SparkPackage,
    SparkSection,
)

__all__ = ["DockerSection", "Environment", "PythonSection", "SparkPackage", "SparkSection"]
