"""The in-job runtime: the only ferry code that runs inside a user's training job.

Stdlib only, Python 3.8+, relative imports only (the folder is also shipped as the top-level
package ``ferry_runtime``). It appends records to the run's spool; the supervisor ingests them.
The contract is ``docs/runtime-protocol.md``.

What cannot be stored is refused when it is logged, never lost later: an int whose decimal form
has more than 4,300 digits (Python's limit for writing ints as text, lower if the script lowered
it with ``sys.set_int_max_str_digits``) raises ``ValueError`` naming the metric, in ``run.log``
values and steps and in the cells of every other ``log_*`` call; log ``float(value)`` or
``str(value)`` instead. Anything that reaches the spool writer anyway costs at most its own record
(kept with its values as text, or as an ``error`` record), never the batch around it, and never
stops the writer's thread (:mod:`.encoding`, :mod:`.spool`).

Example::

    from ferry import Run              # in a job: the shim gives JobRun under the reference's name
    run = Run.get_context()           # (from azureml.core import Run works the same)
    run.log("loss", 0.25)
"""

from __future__ import annotations

from .context import RunEnvironmentException, SubmittedRun, get_context

# in-job datasets and models (the shims export them; ferry.runtime.__all__ is guarded by a test)
from .datasets import (  # noqa: F401
    Dataset,
    Model,
    ModelNotFoundException,
    ModelPathNotFoundException,
    get_model_path,
)
from .offline import OfflineRun
from .run import JobExperiment, JobRun
from .spool import SpoolWriter

__all__ = [
    "JobExperiment",
    "JobRun",
    "OfflineRun",
    "RunEnvironmentException",
    "SpoolWriter",
    "SubmittedRun",
    "get_context",
]
