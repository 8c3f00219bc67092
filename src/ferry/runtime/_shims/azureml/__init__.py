"""ferry's stand-in for the ``azureml`` package (only ``azureml.core.Run`` inside a job).

When the job's interpreter has the real Azure ML SDK, it is loaded instead (a namespace package is
merged: its folders first, this one last). See ``ferry_runtime/shadowing.py``.
"""

import importlib
import os
import sys

_shadowing = importlib.import_module("ferry_runtime.shadowing")
_shadowing.defer_to_real(__name__, os.path.dirname(os.path.dirname(__file__)), sys.path)
