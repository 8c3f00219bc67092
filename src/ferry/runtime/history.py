"""Reading records back: the spool files, each run's state, and the reference's metric shapes.

``get_metrics`` inside a job (and on an offline run) answers from the records themselves, so it
sees exactly what the supervisor will ingest. The shapes are the reference's:

* a value logged once is returned as is; logged several times, as a list in logging order;
* ``list`` metrics: the list, or a list of lists when logged several times;
* ``row`` and ``table`` metrics accumulate rows into ``{column: [cells]}``; a single row in all
  is returned as ``{column: cell}``; a column missing from some rows is filled with None;
* ``image``: the artifact name; the JSON types: the parsed object.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Any, Dict, Iterable, List, Optional

Record = Dict[str, Any]


class RunState:
    """What the records say about one run: its parent, name, tags, properties, status, metrics."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.parent: Optional[str] = None
        self.name: Optional[str] = None
        self.tags: Dict[str, Optional[str]] = {}
        self.properties: Dict[str, str] = {}
        self.status = "Running"
        self.error: Optional[str] = None
        self.metrics: List[Record] = []
        self.files: Dict[str, Optional[str]] = {}
        self.children: List[str] = []

    def __repr__(self) -> str:
        return f"RunState({self.run_id!r}, status={self.status!r})"


def read_spool(spool_dir: str) -> List[Record]:
    """Every complete record in the ``*.jsonl`` files of ``spool_dir``, ordered by ``ts``.

    A trailing partial line (a batch being written) is left out; lines that are not JSON objects
    are skipped.
    """
    records: List[Record] = []
    for path in sorted(glob.glob(os.path.join(glob.escape(spool_dir), "*.jsonl"))):
        try:
            with open(path, "rb") as stream:
                data = stream.read()
        except OSError:
            continue
        end = data.rfind(b"\n")
        for line in data[: end + 1].splitlines():
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):  # not JSON, or nested beyond the parser
                continue
            if isinstance(record, dict) and "k" in record and "run" in record:
                if record["k"] == "series":
                    records.extend(expand_series(record))
                else:
                    records.append(record)
    records.sort(key=_timestamp)  # stable: each file's own order is kept among equal stamps
    return records


def expand_series(record: Record) -> List[Record]:
    """The single ``metric`` records a ``series`` record stands for."""
    values = record.get("values")
    if not isinstance(values, list):
        return []
    steps = record.get("steps")
    stamps = record.get("ts")
    count = len(values)
    steps = steps if isinstance(steps, list) and len(steps) == count else [None] * count
    stamps = stamps if isinstance(stamps, list) and len(stamps) == count else [0.0] * count
    base = {k: record.get(k) for k in ("run", "name", "type", "desc")}
    return [
        dict(base, k="metric", value=value, step=step, ts=stamp)
        for value, step, stamp in zip(values, steps, stamps)
    ]


def _timestamp(record: Record) -> float:
    ts = record.get("ts")
    return float(ts) if isinstance(ts, (int, float)) else 0.0


def fold(records: Iterable[Record]) -> Dict[str, RunState]:
    """Fold records, in order, into one :class:`RunState` per run id."""
    runs: Dict[str, RunState] = {}

    def state(run_id: str) -> RunState:
        found = runs.get(run_id)
        if found is None:
            found = runs[run_id] = RunState(run_id)
        return found

    for record in records:
        run = state(str(record["run"]))
        kind = record["k"]
        if kind == "metric":
            run.metrics.append(record)
        elif kind == "tags":
            run.tags.update(record.get("set") or {})
        elif kind == "untag":
            for key in record.get("keys") or ():
                run.tags.pop(key, None)
        elif kind == "props":
            run.properties.update(record.get("set") or {})
        elif kind == "file":
            run.files[str(record.get("name"))] = record.get("path")
        elif kind == "child":
            parent = record.get("parent")
            run.parent = parent
            run.name = record.get("name")
            run.tags.update(record.get("tags") or {})
            if isinstance(parent, str) and run.run_id not in state(parent).children:
                state(parent).children.append(run.run_id)
        elif kind == "status":
            run.status = str(record.get("status"))
            run.error = record.get("error")
    return runs


def descendants(runs: Dict[str, RunState], run_id: str) -> List[str]:
    """The ids of ``run_id``'s children, grandchildren …, depth first in creation order."""
    found: List[str] = []
    pending = list(reversed(runs[run_id].children)) if run_id in runs else []
    while pending:
        child = pending.pop()
        if child in found:
            continue
        found.append(child)
        pending.extend(reversed(runs[child].children) if child in runs else ())
    return found


def metric_values(records: Iterable[Record], name: Optional[str] = None) -> Dict[str, Any]:
    """Build ``{name: value}`` in the reference's shapes from one run's metric records."""
    grouped: Dict[str, List[Record]] = {}
    for record in records:
        if record.get("k") != "metric":
            continue
        metric = record.get("name")
        if not isinstance(metric, str) or (name is not None and metric != name):
            continue
        grouped.setdefault(metric, []).append(record)
    return {metric: _shape(group) for metric, group in grouped.items()}


def _shape(group: List[Record]) -> Any:
    types = {record.get("type") for record in group}
    values = [record.get("value") for record in group]
    if types <= {"row", "table"}:
        return _columns(group)
    if len(values) == 1:
        return values[0]
    return values


def _columns(group: List[Record]) -> Dict[str, Any]:
    rows: List[Dict[str, Any]] = []
    for record in group:
        value = record.get("value")
        if not isinstance(value, dict):
            continue
        if record.get("type") == "row":
            rows.append(value)
        else:
            lengths = [len(cells) for cells in value.values() if isinstance(cells, list)]
            for index in range(max(lengths, default=0)):
                rows.append({col: _cell(cells, index) for col, cells in value.items()})
    columns: Dict[str, None] = {}  # ordered set; an empty table's columns still appear
    for record in group:
        value = record.get("value")
        if isinstance(value, dict):
            columns.update(dict.fromkeys(value))
    if len(rows) == 1:
        return {col: rows[0].get(col) for col in columns}
    return {col: [row.get(col) for row in rows] for col in columns}


def _cell(cells: Any, index: int) -> Any:
    return cells[index] if isinstance(cells, list) and index < len(cells) else None
