"""ferry's stand-in for ``azureml.core.run``: ``Run``, whose ``Run.get_context()`` is ferry's."""

import importlib

Run = importlib.import_module("ferry_runtime").JobRun
__all__ = ["Run"]
