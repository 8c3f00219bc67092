"""``azureml.telemetry``: the diagnostics switches (no-ops: ferry sends nothing anywhere)."""

from ferry.telemetry import *  # noqa: F403
from ferry.telemetry import UserErrorException, set_diagnostics_collection  # noqa: F401
