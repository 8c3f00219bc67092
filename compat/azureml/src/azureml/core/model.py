"""``azureml.core.model``: ferry's Model and the reference's errors about models."""

from ferry.model import Model, ModelNotFoundException, ModelPathNotFoundException

__all__ = ["Model", "ModelNotFoundException", "ModelPathNotFoundException"]
