"""The reference SDK's module paths, served by ferry (the ``ferry-azureml`` compatibility package).

A notebook or driver script written for the retired Azure ML SDK v1 runs unchanged:
``from azureml.core import Workspace, Experiment, ScriptRunConfig`` gives ferry's classes. Every
module here is a thin re-export of ferry; nothing is implemented twice. This package *replaces*
``azureml-core``: when the real SDK is installed in the same environment, a warning says so (one
of the two should go).
"""

from __future__ import annotations

import warnings
from importlib import metadata
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)  # other azureml.* distributions stay importable

try:
    metadata.version("azureml-core")
except metadata.PackageNotFoundError:
    pass
else:
    warnings.warn(
        "both ferry-azureml and the retired azureml-core are installed: ferry-azureml replaces "
        "azureml-core for driver code (pip uninstall azureml-core, or ferry-azureml)",
        stacklevel=2,
    )
