"""``azureml.widgets``: ``RunDetails(run).show()``."""

from ferry.widgets import RunDetails

__all__ = ["RunDetails"]
