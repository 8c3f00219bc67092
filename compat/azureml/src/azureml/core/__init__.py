"""``azureml.core`` for driver code: ferry's Workspace, Experiment, Run and the rest.

The reference's ``azureml.core`` also exports ``Dataset``, ``Datastore`` and ``Model`` (the
tutorials' ``from azureml.core import Dataset``), so this package does too.

Inside a ferry job whose environment has only ferry's in-job runtime (not the library), only
the in-job names are there: ``Run`` (``Run.get_context()``), ``Model`` (``Model.get_model_path``)
and ``Dataset`` (datasets come in through ``run.input_datasets``).
"""

from typing import Any

import ferry as _ferry

if hasattr(_ferry, "Workspace"):  # the ferry library
    from ferry import (
        VERSION,
        ComputeTarget,
        Dataset,
        Datastore,
        Environment,
        Experiment,
        Model,
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
        "Dataset",
        "Datastore",
        "Environment",
        "Experiment",
        "Model",
        "Run",
        "RunConfiguration",
        "ScriptRun",
        "ScriptRunConfig",
        "Workspace",
    ]
else:  # a job's environment with ferry's runtime only
    from ferry import Dataset, Model, Run

    __all__ = ["Dataset", "Model", "Run"]

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise ImportError(
            f"azureml.core.{name} is not available inside this ferry job: its environment has "
            "ferry's in-job runtime (azureml.core.Run, Model.get_model_path) but not the ferry "
            "library"
        )
