"""``azureml.core.conda_dependencies``."""

from ferry.envbuild.conda import CondaDependencies

__all__ = ["CondaDependencies"]
