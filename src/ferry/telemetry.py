"""The reference's ``azureml.telemetry`` switches, as no-ops: ferry collects no diagnostics.

Sample notebooks of the reference start with::

    from azureml.telemetry import set_diagnostics_collection
    set_diagnostics_collection(send_diagnostics=True)

Here that changes nothing (ferry sends nothing anywhere) and says so once per process, so a
notebook runs unchanged and nobody believes diagnostics were switched on. The names are the
reference's (``azureml-telemetry``): the switches, the read-backs (which answer "off"), a log
handler that drops everything, and ``UserErrorException``, which is ferry's
:class:`~ferry.errors.ConfigError` so that ``except UserErrorException`` catches ferry's refusals
of bad input.

Example::

    from ferry.telemetry import set_diagnostics_collection
    set_diagnostics_collection(send_diagnostics=True)   # prints one note, sends nothing
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

from ferry.errors import ConfigError

__all__ = [
    "INSTRUMENTATION_KEY",
    "UserErrorException",
    "add_diagnostics_properties",
    "get_diagnostics_collection_info",
    "get_telemetry_log_handler",
    "is_diagnostics_collection_info_available",
    "set_diagnostics_collection",
    "set_diagnostics_properties",
]

#: the reference's Application Insights key; ferry has none
INSTRUMENTATION_KEY = ""

#: the reference's user-error exception: ferry's errors about bad input
UserErrorException = ConfigError

_noted = False


def set_diagnostics_collection(
    send_diagnostics: bool = True,
    verbosity: int = logging.INFO,
    reason: str = "",
    path: str | None = None,
) -> None:
    """Accepted and ignored: ferry collects no diagnostics. Turning them on says so once."""
    global _noted
    if send_diagnostics and not _noted:
        _noted = True
        print(
            "ferry: set_diagnostics_collection() changes nothing: ferry collects and sends no "
            "diagnostics",
            file=sys.stderr,
        )


def get_diagnostics_collection_info(
    component_name: str | None = None, path: str | None = None, proceed_in_hbi_mode: bool = False
) -> tuple[bool, str]:
    """``(False, "NOTSET")``: collection is off, always (the reference's shape)."""
    return False, logging.getLevelName(logging.NOTSET)


def is_diagnostics_collection_info_available() -> bool:
    """False: there is no diagnostics setting to read."""
    return False


def add_diagnostics_properties(properties: Mapping[str, Any]) -> None:
    """Accepted and ignored (nothing is sent)."""


def set_diagnostics_properties(properties: Mapping[str, Any]) -> None:
    """Accepted and ignored (nothing is sent)."""


def get_telemetry_log_handler(
    instrumentation_key: str | None = None,
    component_name: str | None = None,
    path: str | None = None,
    proceed_in_hbi_mode: bool = False,
) -> logging.Handler:
    """A handler that drops every record, as the reference's when collection is off."""
    return logging.NullHandler()
