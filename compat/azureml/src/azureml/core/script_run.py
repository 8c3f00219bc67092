"""``azureml.core.script_run``: a submitted script's run."""

from ferry.run import Run as ScriptRun

__all__ = ["ScriptRun"]
