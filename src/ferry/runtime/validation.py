"""Validation of what a script hands the run API, and conversion into the protocol's JSON shapes.

Errors follow one rule: a value of the wrong *kind* raises ``TypeError`` (a list given to
``run.log``, a list in a ``log_row`` cell, a non-int step, a non-str name); a value of the right
kind that is out of range raises ``ValueError`` (a negative step, columns of different lengths, bad
JSON, an empty name, an artifact name with ``..``).

numpy and torch scalars (anything with ``ndim == 0`` and an ``item()`` method) are converted with
``.item()``; arrays (``tolist()``) are accepted where a list is. Neither library is imported.

An int whose decimal form has more than 4,300 digits (Python's limit for converting ints to and
from text, which the supervisor's JSON reader applies; lower if the script lowered it with
``sys.set_int_max_str_digits``) is refused with ``ValueError`` naming the metric, in ``run.log``
values and steps and in the cells of every other ``log_*`` call: the spool could not write it, and
a reader could not read it back. Log ``float(value)`` (an approximate number) or ``str(value)``
(its exact digits, as text) instead. The check costs one ``int.bit_length()`` per int: only ints
of more than 2,100 bits (over 630 digits) are looked at further.

Metric names are kept exactly as given (trailing spaces, dots, slashes and unicode included; the
reference broke on some of them, ferry does not). Artifact names become paths under the spool
folder, so they must stay inside it; run ids become one folder name.
"""

from __future__ import annotations

import json
import numbers
import operator
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any, Dict, List, Optional

from .encoding import safe_repr

#: the metric types of the protocol
SCALAR = "scalar"
LIST = "list"
ROW = "row"
TABLE = "table"
IMAGE = "image"
JSON_TYPES = ("confusion_matrix", "accuracy_table", "residuals", "predictions")

_PLAIN = (int, float, str, bool, type(None))
LIST_IN_LOG = "run.log does not support list type. Use run.log_list instead"

#: ints of at most this many bits have fewer than 640 digits, Python's lowest settable limit
SAFE_INT_BITS = 2100
#: CPython's default limit on int <-> str conversion (``sys.int_info.default_max_str_digits``)
MAX_INT_DIGITS = 4300
_BOUNDS: Dict[int, int] = {}


def to_scalar(
    value: Any, where: str = "run.log", metric: Optional[str] = None, _unwrap: bool = True
) -> Any:
    """Return ``value`` as a JSON scalar (int, float, bool, str or None), or raise ``TypeError``
    (``ValueError`` for an int too long to write; ``metric`` names it in the message)."""
    kind = type(value)
    if kind in _PLAIN:
        if kind is int and value.bit_length() > SAFE_INT_BITS:
            check_int(value, where, metric)
        return value
    if _unwrap and getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None)):
        return to_scalar(value.item(), where, metric, _unwrap=False)
    if isinstance(value, bool):  # pragma: no cover - bool cannot be subclassed
        return bool(value)
    if isinstance(value, int):
        return check_int(int(value), where, metric)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, numbers.Real) or (
        isinstance(value, numbers.Number) and not isinstance(value, numbers.Complex)
    ):
        number: Any = value  # Fraction, Decimal
        try:
            return float(number)
        except (OverflowError, ValueError) as exc:
            raise ValueError(
                f"{_place(where, metric)}: {type(value).__name__} {_short(value)} cannot be "
                f"stored as a float ({exc}); log str(value) to keep it as text"
            ) from None
    if isinstance(value, (Iterable, Mapping)) and not isinstance(value, (bytes, bytearray)):
        if where == "run.log":
            raise TypeError(LIST_IN_LOG)
        raise TypeError(f"{where} values must be scalars, got {kind.__name__}: {_short(value)}")
    raise TypeError(
        f"{where} values must be int, float, bool, str or None, got {kind.__name__}: "
        f"{_short(value)}"
    )


def check_int(value: int, where: str = "run.log", metric: Optional[str] = None) -> int:
    """Return ``value`` if its decimal form can be written and read back; else ``ValueError``."""
    if value.bit_length() <= SAFE_INT_BITS:
        return value
    limit = _digit_limit()
    bound = _BOUNDS.get(limit)
    if bound is None:
        bound = _BOUNDS[limit] = 10**limit
    if -bound < value < bound:
        return value
    raise ValueError(
        f"{_place(where, metric)}: an int of more than {limit:,} digits cannot be stored "
        f"(Python will not write ints that long as text, and the run history reads JSON); "
        f"log float(value) for an approximate number or str(value) for its exact digits"
    )


def _digit_limit() -> int:
    # the job may have lowered its own limit; the supervisor reads with the default one
    get = getattr(sys, "get_int_max_str_digits", None)  # 3.11+, and 3.8.14+/3.9.14+/3.10.7+
    current = get() if get is not None else 0
    return min(current, MAX_INT_DIGITS) if current else MAX_INT_DIGITS


def _place(where: str, metric: Optional[str]) -> str:
    return where if metric is None else f"{where} {_short(metric)}"


def to_step(step: Any, metric: Optional[str] = None) -> Optional[int]:
    """Return ``step`` as a non-negative int (or None), or raise."""
    if step is None:
        return None
    if isinstance(step, bool):
        raise TypeError(f"step must be a non-negative int, got bool: {_short(step)}")
    if getattr(step, "ndim", None) == 0 and callable(getattr(step, "item", None)):
        step = step.item()
    try:
        number = operator.index(step)
    except TypeError:
        raise TypeError(
            f"step must be a non-negative int, got {type(step).__name__}: {_short(step)}"
        ) from None
    if number < 0:
        raise ValueError(f"step must be a non-negative int, got {_short(number)}")
    return check_int(int(number), "the step of run.log", metric)


def to_list(value: Any, where: str = "run.log_list", metric: Optional[str] = None) -> List[Any]:
    """Return ``value`` (list, tuple, range, generator, array …) as a list of scalars."""
    if isinstance(value, (str, bytes, bytearray, Mapping)):
        raise TypeError(f"{where} expects a list of scalars, got {type(value).__name__}")
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and getattr(value, "ndim", 1) != 0:
        value = tolist()
    if not isinstance(value, Iterable):
        raise TypeError(f"{where} expects a list of scalars, got {type(value).__name__}")
    return [to_scalar(item, where, metric) for item in value]


def to_row(cells: Mapping[str, Any], metric: Optional[str] = None) -> Dict[str, Any]:
    """Return one ``log_row`` row as column → scalar; cells must be scalars."""
    if not cells:
        raise ValueError("run.log_row needs at least one column, e.g. run.log_row('t', x=1, y=2)")
    row: Dict[str, Any] = {}
    for column, cell in cells.items():
        try:
            row[column] = to_scalar(cell, "run.log_row", metric)
        except TypeError:
            raise TypeError(
                f"run.log_row cells must be scalars; column {_short(column)} got "
                f"{type(cell).__name__}: {_short(cell)}"
            ) from None
    return row


def to_table(value: Any, metric: Optional[str] = None) -> Dict[str, List[Any]]:
    """Return a ``log_table`` value as column → list, all columns of the same length."""
    if not isinstance(value, Mapping):
        raise TypeError(
            f"run.log_table expects a dict of column -> list, got {type(value).__name__}"
        )
    table: Dict[str, List[Any]] = {}
    for column, cells in value.items():
        if not isinstance(column, str):
            raise TypeError(f"run.log_table column names must be str, got {_short(column)}")
        table[column] = to_list(cells, f"run.log_table column {_short(column)}", metric)
    lengths = {column: len(cells) for column, cells in table.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{_short(column)} has {n}" for column, n in lengths.items())
        raise ValueError(
            f"InvalidColumnLength: run.log_table columns must all have the same length; {detail}"
        )
    return table


def to_json_object(value: Any, kind: str, metric: Optional[str] = None) -> Dict[str, Any]:
    """Return a JSON-typed value (a JSON string or a dict) as a parsed, JSON-safe dict."""
    where = _place(f"run.log_{kind}", metric)
    if isinstance(value, (str, bytes, bytearray)):
        try:
            parsed = json.loads(value, parse_int=_parse_int)
        except RecursionError:
            raise ValueError(f"{where}: the JSON is nested too deeply to store") from None
        except ValueError as exc:
            raise ValueError(
                f"{where} expects a JSON object; the string is not JSON: {exc}"
            ) from exc
    elif isinstance(value, Mapping):
        try:
            parsed = json.loads(json.dumps(value, allow_nan=True), parse_int=_parse_int)
        except RecursionError:
            raise ValueError(f"{where}: the dict is nested too deeply to store") from None
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
        raise TypeError(f"a metric name must be a str, got {type(name).__name__}: {_short(name)}")
    if not name:
        raise ValueError("a metric name must not be empty")
    return str.__str__(name)  # a str subclass, as a plain str


def artifact_parts(name: object) -> List[str]:
    """Split an artifact name into path components, refusing names that leave the folder.

    ``/`` and ``\\`` both separate components; empty and ``.`` components are dropped. Absolute
    names, drive letters, ``..`` components and NUL characters are refused with ``ValueError``.
    """
    if not isinstance(name, str):
        raise TypeError(
            f"an artifact name must be a str, got {type(name).__name__}: {_short(name)}"
        )
    if not name:
        raise ValueError("an artifact name must not be empty")
    if "\x00" in name:
        raise ValueError(f"an artifact name must not contain NUL characters: {_short(name)}")
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise ValueError(f"an artifact name must be relative, got {_short(name)}")
    parts = [part for part in re.split(r"[\\/]", name) if part not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"an artifact name must not contain '..' components: {_short(name)}")
    if not parts:
        raise ValueError(f"an artifact name must name a file: {_short(name)}")
    return parts


def check_run_id(run_id: object) -> str:
    """Return ``run_id`` if it can name one folder (no separators, not ``.``/``..``)."""
    if not isinstance(run_id, str) or not run_id:
        raise ValueError(f"a run id must be a non-empty str, got {_short(run_id)}")
    if run_id in (".", "..") or any(c in run_id for c in "/\\\x00"):
        raise ValueError(
            f"a run id must not contain path separators or be '.'/'..': {_short(run_id)}"
        )
    return run_id


def check_tag_key(key: object, what: str = "tag") -> str:
    """Return ``key`` if it is a non-empty ``str``; raise otherwise."""
    if not isinstance(key, str):
        raise TypeError(f"a {what} key must be a str, got {type(key).__name__}: {_short(key)}")
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


def _parse_int(text: str) -> int:
    if len(text) - text.startswith("-") > _digit_limit():
        raise ValueError(f"an int of {len(text):,} digits is too long to store")
    return int(text)


def _short(value: Any) -> str:
    text = safe_repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
