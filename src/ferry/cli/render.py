"""What the CLI prints: strict JSON, and text and tables that any stored value can go into.

Values come from jobs (metric names and values, tags, file names) and may hold anything: lone
surrogates, control characters (a terminal escape sequence is one), rich markup, integers too
long to print. They are escaped for display here, so printing never fails and never moves the
user's cursor. ``--json`` output is strict JSON: the non-finite floats JSON cannot spell become
the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``.

Example::

    click.echo(to_json({"loss": float("nan")}))   # {"loss": "NaN"}
    t = table("metric", "value"); t.add_row("a\\x1b[2J", 1e308); show(t)
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table

_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def to_json(data: Any) -> str:
    """Strict JSON (``json.loads(out, parse_constant=…)`` never sees NaN or Infinity)."""
    try:
        return json.dumps(data, indent=2, default=str, allow_nan=False)
    except ValueError:  # a non-finite float or an integer too long for str(): rare, so walk now
        return json.dumps(strict(data), indent=2, default=str, allow_nan=False)


def strict(value: Any) -> Any:
    """``value`` with non-finite floats spelled as strings and huge integers as digit strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else _NON_FINITE[repr(value)]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if value.bit_length() < 10_000 else _digits(value)
    if isinstance(value, Mapping):
        return {(k if isinstance(k, str) else str(strict(k))): strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict(v) for v in value]
    return value


def _digits(value: int) -> str:
    """All the digits of a very long integer (the interpreter's str() limit lifted briefly)."""
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        return str(value)
    finally:
        sys.set_int_max_str_digits(limit)


def text(value: Any, limit: int | None = None) -> str:
    """``value`` as one printable line: escaped, and cut to ``limit`` characters."""
    if isinstance(value, str):
        raw = value
    else:
        try:
            raw = str(value)
        except ValueError:  # an int beyond the interpreter's str() limit
            digits = int(value.bit_length() * math.log10(2)) + 1 if isinstance(value, int) else 0
            raw = (
                f"<an integer of about {digits} digits>" if digits else f"<{type(value).__name__}>"
            )
    if limit is not None and len(raw) > limit:
        raw = raw[: max(limit - 1, 0)] + "…"
    return escape(raw)


def escape(raw: str) -> str:
    """Control characters, lone surrogates and other unprintable characters as ``\\x..``,
    ``\\u....`` escapes; everything printable stays as it is."""
    if raw.isprintable():
        return raw
    out = []
    for ch in raw:
        if ch.isprintable():
            out.append(ch)
        elif ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        else:
            code = ord(ch)
            out.append(
                f"\\x{code:02x}"
                if code < 0x100
                else f"\\u{code:04x}"
                if code < 0x10000
                else f"\\U{code:08x}"
            )
    return "".join(out)


def table(*headers: str, **options: Any) -> Table:
    """A rich table whose cells are escaped text, never parsed as markup."""
    from rich.table import Table
    from rich.text import Text

    class _SafeTable(Table):
        def add_row(self, *cells: Any, **kwargs: Any) -> None:
            super().add_row(*(c if isinstance(c, Text) else Text(text(c)) for c in cells), **kwargs)

    return _SafeTable(*headers, **options)


def styled(value: Any, style: str) -> Any:
    """An escaped cell in a colour."""
    from rich.text import Text

    return Text(text(value), style=style)


def show(renderable: Any) -> None:
    """Print a table on standard output."""
    from rich.console import Console

    Console().print(renderable)
