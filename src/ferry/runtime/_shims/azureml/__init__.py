"""ferry's stand-in for the ``azureml`` package (only ``azureml.core.Run`` inside a job).

When the job's interpreter has the real Azure ML SDK, it is loaded instead (a namespace package is
merged: its folders first, this one last). See ``ferry_runtime/shadowing.py``. Inside a ferry run
the real SDK's ``Run.get_context()`` is then made to return ferry's run, so its offline run never
swallows the metrics (``ferry_runtime/azureml_sdk.py``).
"""

import importlib
import os
import sys

_runtime_dir = os.path.dirname(os.path.dirname(__file__))
_shadowing = importlib.import_module("ferry_runtime.shadowing")
if _shadowing.defer_to_real(__name__, _runtime_dir, sys.path) != _shadowing.NONE:
    _sdk = importlib.import_module("ferry_runtime.azureml_sdk")
    if _sdk.in_ferry_run(os.environ):
        _sdk.install(_runtime_dir)
