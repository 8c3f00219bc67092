"""``azureml.core.script_run_config``."""

from ferry.script_run_config import ScriptRunConfig

__all__ = ["ScriptRunConfig"]
