"""``azureml.core.experiment``."""

from ferry.experiment import Experiment, ViewType

__all__ = ["Experiment", "ViewType"]
