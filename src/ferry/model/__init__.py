"""Registered models: versions of a file or folder in the workspace's blob store, with what
produced them (:class:`Model`; the machinery in :mod:`.registry`).

Example::

    from ferry.model import Model
    Model.register(ws, "model.pkl", "sk-ridge")
    Model(ws, "sk-ridge").lineage()
"""

from ferry.model.model import Model, ModelNotFoundException
from ferry.model.registry import ModelPathNotFoundException
from ferry.model.resources import ResourceConfiguration

__all__ = [
    "Model",
    "ModelNotFoundException",
    "ModelPathNotFoundException",
    "ResourceConfiguration",
]
