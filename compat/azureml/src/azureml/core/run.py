"""``azureml.core.run``: the run handle (``Run.get_context()`` inside a job)."""

from ferry import Run

__all__ = ["Run"]
