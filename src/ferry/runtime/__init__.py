"""The in-job runtime: the only ferry code that runs inside a user's training job.

Stdlib only, Python 3.8+, relative imports only (the folder is also shipped as the top-level
package ``ferry_runtime``). It appends records to the run's spool; the supervisor ingests them.
The contract is ``docs/runtime-protocol.md``.

Example::

    from ferry.runtime import Run      # or: from azureml.core import Run (the shim)
    run = Run.get_context()
    run.log("loss", 0.25)
"""

from __future__ import annotations

from .context import RunEnvironmentException, SubmittedRun, get_context
from .offline import OfflineRun
from .run import Experiment, Run
from .spool import SpoolWriter

__all__ = [
    "Experiment",
    "OfflineRun",
    "Run",
    "RunEnvironmentException",
    "SpoolWriter",
    "SubmittedRun",
    "get_context",
]
