"""ferry's stand-in for ``azureml.core``: ``Run``, whose ``Run.get_context()`` is ferry's.

When the real ``azureml.core`` (azureml-core) is installed, it is loaded instead.
"""

import importlib
import os
import sys
from typing import Any

_shadowing = importlib.import_module("ferry_runtime.shadowing")
_parent_path = list(getattr(sys.modules["azureml"], "__path__", []))
if _shadowing.defer_to_real(__name__, os.path.dirname(os.path.dirname(__file__)), _parent_path) != (
    _shadowing.REAL
):
    _runtime = importlib.import_module("ferry_runtime")
    Run = _runtime.JobRun  # the reference's name for ferry's in-job run
    Model = _runtime.Model  # Model.get_model_path
    Dataset = _runtime.Dataset  # datasets come in through the run (run.input_datasets)
    __all__ = ["Dataset", "Model", "Run"]

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise ImportError(
            f"azureml.core.{name} is not available inside a ferry job: ferry provides "
            "azureml.core.Run (Run.get_context()) and Model.get_model_path. Install azureml-core in the job's "
            "environment to use the rest of the SDK."
        )
