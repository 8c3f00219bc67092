"""The reference's metric shapes, from logged records (pure).

scalar logged once → the value, many → a list; ``log_list`` → the list (a list of lists if
repeated); rows accumulate into ``{column: [..]}`` (one row → ``{column: value}``); tables are
column dicts (repeated tables are concatenated column-wise); images → artifact names.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ferry.tracking import MetricRecord


def shape(records: Iterable[MetricRecord], name: str | None = None) -> dict[str, Any]:
    """Group records by name (first-logged order) and shape each like the reference."""
    grouped: dict[str, list[MetricRecord]] = {}
    for rec in records:
        if name is None or rec.name == name:
            grouped.setdefault(rec.name, []).append(rec)
    return {key: _shape_one(recs) for key, recs in grouped.items()}


def _shape_one(recs: list[MetricRecord]) -> Any:
    kind = recs[-1].type
    if kind == "row":
        columns: dict[str, list[Any]] = {}
        for rec in recs:
            for col, value in dict(rec.value or {}).items():
                columns.setdefault(col, []).append(value)
        if len(recs) == 1:
            return {col: values[0] for col, values in columns.items()}
        return columns
    if kind == "table":
        if len(recs) == 1:
            return dict(recs[0].value or {})
        merged: dict[str, list[Any]] = {}
        for rec in recs:
            for col, values in dict(rec.value or {}).items():
                merged.setdefault(col, []).extend(values if isinstance(values, list) else [values])
        return merged
    values = [rec.value for rec in recs]
    return values[0] if len(values) == 1 else values
