"""ferry's in-job stand-in for the ``ferry`` package: ``from ferry import Run`` (and ``Model``
for ``Model.get_model_path``) in a script.

When the job's interpreter has the full ferry library installed, it is loaded instead.
"""

import importlib
import os
import sys

_shadowing = importlib.import_module("ferry_runtime.shadowing")
if _shadowing.defer_to_real(__name__, os.path.dirname(os.path.dirname(__file__)), sys.path) != (
    _shadowing.REAL
):
    _runtime = importlib.import_module("ferry_runtime")
    Run = _runtime.JobRun  # the reference's name for ferry's in-job run
    OfflineRun = _runtime.OfflineRun
    get_context = _runtime.get_context
    Model = _runtime.Model  # Model.get_model_path
    Dataset = _runtime.Dataset  # datasets come in through the run
    __all__ = ["Dataset", "Model", "OfflineRun", "Run", "get_context"]
