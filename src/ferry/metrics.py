"""The reference's metric shapes for series read from the run history.

Scalars logged once → the value, many → a list in logging order; ``list`` metrics → the list (a
list of lists when repeated); rows and tables → column dicts, where the rules are the runtime's
(:func:`ferry.runtime.history.metric_values`), so the job and the driver agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ferry.runtime.history import metric_values
from ferry.tracking import MetricSeries

_COLUMNAR = frozenset({"row", "table"})


def shape(series: Iterable[MetricSeries], name: str | None = None) -> dict[str, Any]:
    """Group series by metric name (first-logged order) and shape each like the reference."""
    grouped: dict[str, list[MetricSeries]] = {}
    for s in series:
        if name is None or s.name == name:
            grouped.setdefault(s.name, []).append(s)
    out: dict[str, Any] = {}
    for key, group in grouped.items():
        if {s.type for s in group} <= _COLUMNAR:
            records = (
                {"k": "metric", "name": key, "type": s.type, "value": v}
                for s in group
                for v in s.values
            )
            out[key] = metric_values(records)[key]
            continue
        values = [v for s in group for v in s.values]
        out[key] = values[0] if len(values) == 1 else values
    return out
