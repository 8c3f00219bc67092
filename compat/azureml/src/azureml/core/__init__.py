"""``azureml.core`` for driver code: ferry's Workspace, Experiment, Run and the rest.

Inside a ferry job whose environment has only ferry's in-job runtime (not the library), only
``Run`` is there (``Run.get_context()``), as with the reference's own in-job use.
"""

from typing import Any

import ferry as _ferry

if hasattr(_ferry, "Workspace"):  # the ferry library
    from ferry import (
        VERSION,
        ComputeTarget,
        Environment,
        Experiment,
        Run,
        RunConfiguration,
        ScriptRunConfig,
        Workspace,
    )
    from ferry.envbuild.conda import CondaDependencies
    from ferry.run import Run as ScriptRun  # the reference's type of a submitted script's run

    __all__ = [
        "VERSION",
        "ComputeTarget",
        "CondaDependencies",
        "Environment",
        "Experiment",
        "Run",
        "RunConfiguration",
        "ScriptRun",
        "ScriptRunConfig",
        "Workspace",
    ]
else:  # a job's environment with ferry's runtime only
    from ferry import Run

    __all__ = ["Run"]

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise ImportError(
            f"azureml.core.{name} is not available inside this ferry job: its environment has "
            "ferry's in-job runtime (azureml.core.Run) but not the ferry library"
        )
