"""ferry's stand-in for ``azureml.core.model``: ``Model.get_model_path`` inside a job."""

import importlib

_runtime = importlib.import_module("ferry_runtime")
Model = _runtime.Model
ModelNotFoundException = _runtime.ModelNotFoundException
__all__ = ["Model", "ModelNotFoundException"]
