"""The reference's metric shapes for records read from the run history.

One definition of the shapes serves the job and the driver: the runtime's
:func:`ferry.runtime.history.metric_values` (scalar once → value, many → list; rows and tables →
column dicts, one row → ``{column: value}``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ferry.runtime.history import metric_values
from ferry.tracking import MetricRecord


def shape(records: Iterable[MetricRecord], name: str | None = None) -> dict[str, Any]:
    """Group records by name (first-logged order) and shape each like the reference."""
    return metric_values(
        ({"k": "metric", "name": r.name, "type": r.type, "value": r.value} for r in records), name
    )
