"""``azureml.core.dataset``: ferry's Dataset (``Dataset.File``, ``Dataset.Tabular``).

Inside a job whose environment has ferry's in-job runtime only, datasets come in through the run
(``Run.get_context().input_datasets``) and the runtime's ``Dataset`` is the one there.
"""

import ferry as _ferry

if hasattr(_ferry, "Workspace"):  # the ferry library
    from ferry.data import Dataset
else:  # a job's environment with ferry's runtime only
    from ferry import Dataset

__all__ = ["Dataset"]
