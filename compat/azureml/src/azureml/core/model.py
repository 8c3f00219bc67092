"""``azureml.core.model``: ferry's Model and the reference's errors about models.

Inside a job whose environment has ferry's in-job runtime only (the scoring script's
``Model.get_model_path``), the runtime's ``Model`` is the one there.
"""

import ferry as _ferry

if hasattr(_ferry, "Workspace"):  # the ferry library
    from ferry.model import Model, ModelNotFoundException, ModelPathNotFoundException
else:  # a job's environment with ferry's runtime only
    from ferry_runtime import Model, ModelNotFoundException, ModelPathNotFoundException

__all__ = ["Model", "ModelNotFoundException", "ModelPathNotFoundException"]
