"""A run's metrics shaped for the UI's charts, long series thinned on the server.

A scalar logged 1,000,000 times reaches the page as ~1,000 points chosen by MinMax-LTTB
(``tsdownsample``): the points that keep the line's shape (peaks and dips included), so the
chart paints at once and still shows every spike. Tables, rows, lists and the reference's JSON
chart kinds (confusion matrix, accuracy table, residuals, predictions) come as columns or as
their JSON value, capped so one huge table cannot fill the page.

Example::

    chart(store.get_series([run_id], "loss"), "loss", points=1000)
    # {"name": "loss", "kind": "series", "x": [...], "y": [...], "total": 1000000, ...}
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from ferry.errors import ConfigError
from ferry.metrics import shape
from ferry.tracking import MetricSeries

#: at most this many points per chart line (a screen is ~1,000-2,000 pixels wide)
MAX_POINTS = 5000
DEFAULT_POINTS = 1000
#: cells of a table, list or JSON chart sent at most (the page says it was cut)
MAX_CELLS = 20_000
JSON_KINDS = frozenset({"confusion_matrix", "accuracy_table", "residuals", "predictions"})


def check_points(points: int) -> int:
    if not 2 <= points <= MAX_POINTS:
        raise ConfigError(f"a chart has 2 to {MAX_POINTS} points, not {points}")
    return points


def chart(
    series: Sequence[MetricSeries], name: str, points: int = DEFAULT_POINTS
) -> dict[str, Any]:
    """One metric of one run, ready to draw (see the module docstring)."""
    mine = [s for s in series if s.name == name]
    if not mine:
        raise ConfigError(f"the run has no metric {name!r}")
    kinds = {s.type for s in mine}
    kind = next(iter(kinds)) if len(kinds) == 1 else "scalar"
    base: dict[str, Any] = {"name": name, "type": kind}
    if kind == "scalar":
        numbers = line(mine)
        total = sum(len(s.values) for s in mine)
        if total == 1:
            return {**base, "kind": "value", "value": _plain(mine[0].values[0])}
        if numbers is None:  # text values: shown as a list
            return {**base, **_capped_list([_plain(v) for s in mine for v in s.values])}
        x, y = numbers
        return {**base, "kind": "series", **thin(x, y, points)}
    if kind == "image":
        files = [str(v.get("path") if isinstance(v, dict) else v) for s in mine for v in s.values]
        return {**base, "kind": "image", "files": files[:100]}
    value = shape(mine)[name]
    if kind in JSON_KINDS:
        parsed = _json_value(value)
        return {**base, "kind": "json", "chart_type": kind, **_capped_json(parsed)}
    if isinstance(value, dict):
        return {**base, "kind": "table", **_capped_columns(value)}
    return {**base, **_capped_list(value if isinstance(value, list) else [value])}


def fast_line(
    batches: Sequence[tuple[str, str, str, str | None]],
) -> tuple[Any, Any] | None:
    """(x, y) as numpy arrays straight from stored batches (``SqlRunStore.raw_series``) when
    every value is a plain number; None when a batch holds anything else (the general path
    then reads the series)."""
    import numpy as np
    from pydantic_core import from_json

    ys, xs = [], []
    stepped = True
    for _run_id, kind, values, steps in batches:
        if kind != "scalar":
            return None
        y = np.asarray(from_json(values, allow_inf_nan=True))
        if y.dtype.kind not in "iuf":  # text, booleans, nulls, huge ints: the general path
            return None
        ys.append(y.astype(np.float64, copy=False))
        if stepped and steps is not None:
            x = np.asarray(from_json(steps))
            stepped = x.dtype.kind in "iu" and len(x) == len(y)
            xs.append(x)
        else:
            stepped = False
    if not ys:
        return None
    y_all = np.concatenate(ys)
    x_all = (
        np.concatenate(xs).astype(np.float64)
        if stepped
        else np.arange(len(y_all), dtype=np.float64)
    )
    return x_all, y_all


def fast_chart(
    batches: Sequence[tuple[str, str, str, str | None]], name: str, points: int
) -> dict[str, Any] | None:
    """:func:`chart` of a numeric scalar series logged more than once, decoded in one pass;
    None when the general path must answer."""
    found = fast_line(batches)
    if found is None or len(found[1]) < 2:
        return None
    return {"name": name, "type": "scalar", "kind": "series", **thin(*found, points)}


def thin(x: Any, y: Any, points: int) -> dict[str, Any]:
    """At most ``points`` of the line ``(x, y)`` (MinMax-LTTB); NaN and infinities are kept
    out of the line (a chart cannot place them) and counted in ``skipped``."""
    import numpy as np
    from tsdownsample import MinMaxLTTBDownsampler

    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    finite = np.isfinite(ys) & np.isfinite(xs)
    skipped = int(len(ys) - int(finite.sum()))
    xs, ys = xs[finite], ys[finite]
    if len(xs) > 1 and np.any(np.diff(xs) < 0):  # steps logged out of order: draw in order
        order = np.argsort(xs, kind="stable")
        xs, ys = xs[order], ys[order]
    total = len(xs)
    if total > points:
        keep = MinMaxLTTBDownsampler().downsample(xs, ys, n_out=points)  # type: ignore[no-untyped-call]
        xs, ys = xs[keep], ys[keep]
    return {
        "x": xs.tolist(),
        "y": ys.tolist(),
        "total": total,
        "downsampled": total > points,
        "skipped": skipped,
    }


def line(series: Sequence[MetricSeries]) -> tuple[list[float], list[float]] | None:
    """A metric's numeric values as (x, y): its steps where every value has one, else the
    logging order; None when a value is not a number."""
    values: list[float] = []
    steps: list[float] = []
    has_steps = True
    for s in series:
        for index, value in enumerate(s.values):
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            try:
                values.append(float(value))
            except OverflowError:
                values.append(math.inf if value > 0 else -math.inf)
            step = s.steps[index] if s.steps is not None else None
            if step is None:
                has_steps = False
            else:
                steps.append(float(step))
    x = steps if has_steps and len(steps) == len(values) else [float(i) for i in range(len(values))]
    return x, values


def _plain(value: Any) -> Any:
    """A value JSON can carry to a page (NaN and infinities as text)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _json_value(value: Any) -> Any:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _capped_list(values: list[Any]) -> dict[str, Any]:
    cut = len(values) > MAX_CELLS
    return {"kind": "list", "values": [_clean(v) for v in values[:MAX_CELLS]], "truncated": cut}


def _capped_columns(columns: dict[str, Any]) -> dict[str, Any]:
    width = max(len(columns), 1)
    rows = max(MAX_CELLS // width, 1)
    out: dict[str, list[Any]] = {}
    cut = False
    for key, column in columns.items():
        cells = column if isinstance(column, list) else [column]
        cut = cut or len(cells) > rows
        out[str(key)] = [_clean(v) for v in cells[:rows]]
    return {"columns": out, "truncated": cut}


def _capped_json(value: Any) -> dict[str, Any]:
    clean = _clean(value)
    size = len(json.dumps(clean, default=str))
    if size > MAX_CELLS * 20:
        return {"value": None, "truncated": True, "size": size}
    return {"value": clean, "truncated": False}


def _clean(value: Any) -> Any:
    """``value`` with NaN and infinities as text, at any depth (a browser's JSON has none)."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return _plain(value)
