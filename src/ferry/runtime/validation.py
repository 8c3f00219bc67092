"""Validation of what a script hands the run API, and conversion into the protocol's JSON shapes.

Errors follow one rule: a value of the wrong *kind* raises ``TypeError`` (a list given to
``run.log``, a list in a ``log_row`` cell, a non-int step, a non-str name); a value of the right
kind that is out of range raises ``ValueError`` (a negative step, columns of different lengths, bad
JSON, an empty name, an artifact name with ``..``).

numpy and torch scalars (anything with ``ndim == 0`` and an ``item()`` method) are converted with
``.item()``; arrays (``tolist()``) are accepted where a list is. Neither library is imported.

Metric names are kept exactly as given (trailing spaces, dots, slashes and unicode included; the
reference broke on some of them, ferry does not). Artifact names become paths under the spool
folder, so they must stay inside it; run ids become one folder name.
"""

from __future__ import annotations

import json
import numbers
import operator
import re
from collections.abc import Iterable, Mapping
from typing import Any, Dict, List, Optional

#: the metric types of the protocol
SCALAR = "scalar"
LIST = "list"
ROW = "row"
TABLE = "table"
IMAGE = "image"
JSON_TYPES = ("confusion_matrix", "accuracy_table", "residuals", "predictions")

_PLAIN = (int, float, str, bool, type(None))
LIST_IN_LOG = "run.log does not support list type. Use run.log_list instead"


def to_scalar(value: Any, where: str = "run.log") -> Any:
    """Return ``value`` as a JSON scalar (int, float, bool, str or None), or raise ``TypeError``."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None)):
        return to_scalar(value.item(), where)
    if isinstance(value, bool):  # pragma: no cover - bool cannot be subclassed
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, numbers.Real) or (
        isinstance(value, numbers.Number) and not isinstance(value, numbers.Complex)
    ):
        number: Any = value  # Fraction, Decimal
        return float(number)
    if isinstance(value, (Iterable, Mapping)) and not isinstance(value, (bytes, bytearray)):
        if where == "run.log":
            raise TypeError(LIST_IN_LOG)
        raise TypeError(f"{where} values must be scalars, got {kind.__name__}: {_short(value)}")
    raise TypeError(
        f"{where} values must be int, float, bool, str or None, got {kind.__name__}: "
        f"{_short(value)}"
    )


def to_step(step: Any) -> Optional[int]:
    """Return ``step`` as a non-negative int (or None), or raise."""
    if step is None:
        return None
    if isinstance(step, bool):
        raise TypeError(f"step must be a non-negative int, got bool: {step!r}")
    if getattr(step, "ndim", None) == 0 and callable(getattr(step, "item", None)):
        step = step.item()
    try:
        number = operator.index(step)
    except TypeError:
        raise TypeError(
            f"step must be a non-negative int, got {type(step).__name__}: {step!r}"
        ) from None
    if number < 0:
        raise ValueError(f"step must be a non-negative int, got {number}")
    return int(number)


def to_list(value: Any, where: str = "run.log_list") -> List[Any]:
    """Return ``value`` (list, tuple, range, generator, array …) as a list of scalars."""
    if isinstance(value, (str, bytes, bytearray, Mapping)):
        raise TypeError(f"{where} expects a list of scalars, got {type(value).__name__}")
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and getattr(value, "ndim", 1) != 0:
        value = tolist()
    if not isinstance(value, Iterable):
        raise TypeError(f"{where} expects a list of scalars, got {type(value).__name__}")
    return [to_scalar(item, where) for item in value]


def to_row(cells: Mapping[str, Any]) -> Dict[str, Any]:
    """Return one ``log_row`` row as column → scalar; cells must be scalars."""
    if not cells:
        raise ValueError("run.log_row needs at least one column, e.g. run.log_row('t', x=1, y=2)")
    row: Dict[str, Any] = {}
    for column, cell in cells.items():
        try:
            row[column] = to_scalar(cell, "run.log_row")
        except TypeError:
            raise TypeError(
                f"run.log_row cells must be scalars; column {column!r} got "
                f"{type(cell).__name__}: {_short(cell)}"
            ) from None
    return row


def to_table(value: Any) -> Dict[str, List[Any]]:
    """Return a ``log_table`` value as column → list, all columns of the same length."""
    if not isinstance(value, Mapping):
        raise TypeError(
            f"run.log_table expects a dict of column -> list, got {type(value).__name__}"
        )
    table: Dict[str, List[Any]] = {}
    for column, cells in value.items():
        if not isinstance(column, str):
            raise TypeError(f"run.log_table column names must be str, got {column!r}")
        table[column] = to_list(cells, f"run.log_table column {column!r}")
    lengths = {column: len(cells) for column, cells in table.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{column!r} has {n}" for column, n in lengths.items())
        raise ValueError(
            f"InvalidColumnLength: run.log_table columns must all have the same length; {detail}"
        )
    return table


def to_json_object(value: Any, kind: str) -> Dict[str, Any]:
    """Return a JSON-typed value (a JSON string or a dict) as a parsed, JSON-safe dict."""
    where = f"run.log_{kind}"
    if isinstance(value, (str, bytes, bytearray)):
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            raise ValueError(
                f"{where} expects a JSON object; the string is not JSON: {exc}"
            ) from exc
    elif isinstance(value, Mapping):
        try:
            parsed = json.loads(json.dumps(value, allow_nan=True))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{where} expects a JSON-serialisable dict: {exc}") from exc
    else:
        raise TypeError(f"{where} expects a JSON string or a dict, got {type(value).__name__}")
    if not isinstance(parsed, dict):
        raise ValueError(f"{where} expects a JSON object, got {type(parsed).__name__}")
    return parsed


_DRIVE = re.compile(r"^[A-Za-z]:")


def check_metric_name(name: object) -> str:
    """Return ``name`` unchanged if it is a non-empty ``str``; raise otherwise."""
    if type(name) is str and name:
        return name
    if not isinstance(name, str):
        raise TypeError(f"a metric name must be a str, got {type(name).__name__}: {name!r}")
    if not name:
        raise ValueError("a metric name must not be empty")
    return str.__str__(name)  # a str subclass, as a plain str


def artifact_parts(name: object) -> List[str]:
    """Split an artifact name into path components, refusing names that leave the folder.

    ``/`` and ``\\`` both separate components; empty and ``.`` components are dropped. Absolute
    names, drive letters, ``..`` components and NUL characters are refused with ``ValueError``.
    """
    if not isinstance(name, str):
        raise TypeError(f"an artifact name must be a str, got {type(name).__name__}: {name!r}")
    if not name:
        raise ValueError("an artifact name must not be empty")
    if "\x00" in name:
        raise ValueError(f"an artifact name must not contain NUL characters: {name!r}")
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise ValueError(f"an artifact name must be relative, got {name!r}")
    parts = [part for part in re.split(r"[\\/]", name) if part not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"an artifact name must not contain '..' components: {name!r}")
    if not parts:
        raise ValueError(f"an artifact name must name a file: {name!r}")
    return parts


def check_run_id(run_id: object) -> str:
    """Return ``run_id`` if it can name one folder (no separators, not ``.``/``..``)."""
    if not isinstance(run_id, str) or not run_id:
        raise ValueError(f"a run id must be a non-empty str, got {run_id!r}")
    if run_id in (".", "..") or any(c in run_id for c in "/\\\x00"):
        raise ValueError(f"a run id must not contain path separators or be '.'/'..': {run_id!r}")
    return run_id


def check_tag_key(key: object, what: str = "tag") -> str:
    """Return ``key`` if it is a non-empty ``str``; raise otherwise."""
    if not isinstance(key, str):
        raise TypeError(f"a {what} key must be a str, got {type(key).__name__}: {key!r}")
    if not key:
        raise ValueError(f"a {what} key must not be empty")
    return str.__str__(key)


def image_artifact_name(metric_name: str, stamp: int, suffix: str) -> str:
    """The artifact name of an image logged under ``metric_name``: ``<name>_<stamp><suffix>``.

    Path separators in the metric name are replaced with ``_`` so the image is one file.
    """
    flat = re.sub(r"[\\/\x00]", "_", metric_name)
    return f"{flat}_{stamp}{suffix}"


def as_text(value: Any) -> str:
    """``value`` as text for tags, properties and descriptions (None → ``""``)."""
    if value is None:
        return ""
    return value if type(value) is str else str(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
