"""ferry's stand-in for ``azureml.core.dataset``: inside a job, datasets come in through the
run (``Run.get_context().input_datasets``)."""

import importlib

Dataset = importlib.import_module("ferry_runtime").Dataset
__all__ = ["Dataset"]
