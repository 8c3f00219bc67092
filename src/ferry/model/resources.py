"""``ResourceConfiguration``: the cores, memory and GPUs a model needs to serve (the reference's
``azureml.core.resource_configuration``).

The reference's model-registration notebooks pass one to ``Model.register(...,
resource_configuration=ResourceConfiguration(cpu=1, memory_in_gb=0.5))`` as a hint for a later
deployment. ferry does not deploy models; it checks the values and keeps the object's dict form
(``serialize``/``deserialize``) so such a notebook runs unchanged.

Example::

    ResourceConfiguration(cpu=1, memory_in_gb=0.5).serialize()
    # {'cpu': 1, 'memoryInGB': 0.5, 'gpu': None}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ferry.errors import ConfigError


def _amount(value: Any, what: str) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"ResourceConfiguration: {what} must be a number above 0, not {value!r}")
    return value


class ResourceConfiguration:
    """The resources a model needs: ``cpu`` cores, ``memory_in_gb`` and ``gpu`` count."""

    def __init__(
        self, cpu: float | None = None, memory_in_gb: float | None = None, gpu: int | None = None
    ) -> None:
        self.cpu = _amount(cpu, "cpu")
        self.memory_in_gb = _amount(memory_in_gb, "memory_in_gb")
        if gpu is not None and (isinstance(gpu, bool) or not isinstance(gpu, int) or gpu < 0):
            raise ConfigError(f"ResourceConfiguration: gpu must be a whole number ≥ 0, not {gpu!r}")
        self.gpu = gpu

    def serialize(self) -> dict[str, Any]:
        """The reference's dict form (``memoryInGB``)."""
        return {"cpu": self.cpu, "memoryInGB": self.memory_in_gb, "gpu": self.gpu}

    @staticmethod
    def deserialize(payload: Mapping[str, Any]) -> ResourceConfiguration:
        if not isinstance(payload, Mapping):
            raise ConfigError("ResourceConfiguration.deserialize needs a dict")
        return ResourceConfiguration(
            payload.get("cpu"), payload.get("memoryInGB"), payload.get("gpu")
        )

    def _validate_configuration(self) -> None:
        """The reference's check; the constructor already refused bad values."""

    def __repr__(self) -> str:
        return (
            f"ResourceConfiguration(cpu={self.cpu!r}, memory_in_gb={self.memory_in_gb!r}, "
            f"gpu={self.gpu!r})"
        )


def check_resources(value: Any) -> None:
    """``resource_configuration=`` of a model registration: a ResourceConfiguration or None."""
    if value is not None and not isinstance(value, ResourceConfiguration):
        raise ConfigError(
            "resource_configuration must be a ResourceConfiguration(cpu=…, memory_in_gb=…), "
            f"not {type(value).__name__}"
        )
