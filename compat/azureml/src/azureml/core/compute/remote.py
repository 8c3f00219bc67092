"""``azureml.core.compute.remote``."""

from ferry.compute import RemoteAttachConfiguration, RemoteCompute

__all__ = ["RemoteAttachConfiguration", "RemoteCompute"]
