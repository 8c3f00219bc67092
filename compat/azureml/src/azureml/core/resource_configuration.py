"""``azureml.core.resource_configuration``: what a model needs to serve (kept, not acted on)."""

from ferry.model import ResourceConfiguration

__all__ = ["ResourceConfiguration"]
