"""How records become spool lines, and values become text, without ever raising.

The spool writer hands a whole batch to :func:`encode_batch`. The fast path encodes it with one
prebuilt C encoder; when any record of the batch cannot be encoded (a value the run API would have
refused but that reached :meth:`SpoolWriter.write` directly: an object, an int too long to print,
a list nested too deeply, an object whose ``repr`` raises), each record is encoded on its own,
leniently:

1. as it is, if it encodes;
2. else with every value that does not encode replaced by its text (``repr``, or a description
   when even ``repr`` fails) — a series keeps its other values;
3. else as ``{"k": "error", "run": …, "ts": …, "error": "…"}`` naming what was lost.

So one bad value costs at most its own record, never the batch around it (metrics and tags of
the same 0.2 s), and never the writer's thread.

:func:`show` prints the offline run's ``Attempted to …`` lines; a name or value the console cannot
encode (a lone surrogate) is printed with backslash escapes instead of raising.
"""

from __future__ import annotations

import json
import json.encoder
import sys
import time
from typing import Any, Callable, Dict, List, Tuple

Record = Dict[str, Any]

_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=True)


def _make_fast_encoder() -> Callable[[Any], str]:
    # JSONEncoder.encode builds a new C encoder on every call; build one once (about a third
    # cheaper per record). Same output as _ENCODER; falls back to it without the C extension.
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has it
        return _ENCODER.encode
    try:
        encoder = make(
            None, _refuse, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True
        )
    except TypeError:  # pragma: no cover - a future signature change
        return _ENCODER.encode

    def encode(record: Any) -> str:
        return "".join(encoder(record, 0))

    probe = {"a": [1, 1.5, None, True, "\u00e9\n"], "b": {"c": float("inf")}}
    try:
        same = encode(probe) == _ENCODER.encode(probe)
    except Exception:  # pragma: no cover - a future signature change
        same = False
    return encode if same else _ENCODER.encode


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


encode_record = _make_fast_encoder()


def encode_batch(batch: List[Record]) -> bytes:
    """The batch as ASCII JSON lines (``\\n``-terminated); never raises."""
    try:
        grouped = group_series(batch)
    except Exception:  # an odd record (not a dict, an unhashable name): keep them one by one
        grouped = list(batch)
    try:
        text = "\n".join(map(encode_record, grouped))
    except Exception:
        text = "\n".join(map(encode_leniently, grouped))
    return (text + "\n").encode("ascii", "replace")


def group_series(batch: List[Record]) -> List[Record]:
    """Fold repeated values of one metric into ``series`` records (columnar, far cheaper to
    encode, parse and store). Grouping stops at every other record, so the order between
    metrics and tags, children or statuses is kept; the order within one metric is kept."""
    out: List[Record] = []
    slots: Dict[Tuple[Any, Any, Any, Any], int] = {}
    for rec in batch:
        if rec.get("k") != "metric":
            out.append(rec)
            slots = {}
            continue
        key = (rec.get("run"), rec.get("name"), rec.get("type"), rec.get("desc"))
        slot = slots.get(key)
        if slot is None:
            slots[key] = len(out)
            out.append(rec)
            continue
        first = out[slot]
        if first.get("k") == "metric":
            first = out[slot] = {
                "k": "series",
                "run": first.get("run"),
                "name": first.get("name"),
                "type": first.get("type"),
                "desc": first.get("desc"),
                "values": [first.get("value")],
                "steps": [first.get("step")],
                "ts": [first.get("ts")],
            }
        first["values"].append(rec.get("value"))
        first["steps"].append(rec.get("step"))
        first["ts"].append(rec.get("ts"))
    for rec in out:
        if rec.get("k") == "series" and all(step is None for step in rec["steps"]):
            rec["steps"] = None
    return out


def encode_leniently(record: Any) -> str:
    """One record as a JSON line, keeping all that can be kept (see the module docstring)."""
    try:
        if not isinstance(record, dict):
            raise TypeError(f"a record must be a dict, got {type(record).__name__}")
        try:
            return _ENCODER.encode(record)
        except Exception:
            pass
        series = record.get("k") == "series"
        clean = {
            _as_key(key): _each_encodable(value)
            if series and key == "values" and isinstance(value, list)
            else _encodable(value)
            for key, value in record.items()
        }
        return _ENCODER.encode(clean)
    except Exception as exc:
        return _error_line(record, exc)


def _each_encodable(values: List[Any]) -> List[Any]:
    return [_encodable(value) for value in values]


def _encodable(value: Any) -> Any:
    if type(value) in (str, float, bool, type(None)):
        return value
    try:
        _ENCODER.encode(value)
    except Exception:
        return safe_repr(value)
    return value


def _as_key(key: Any) -> Any:
    return key if isinstance(key, (str, int, float, bool)) or key is None else safe_repr(key)


def _error_line(record: Any, exc: BaseException) -> str:
    run = record.get("run") if isinstance(record, dict) else None
    kind = record.get("k") if isinstance(record, dict) else None
    what = f"a {kind!r} record" if isinstance(kind, str) else "a record"
    try:
        return _ENCODER.encode(
            {
                "k": "error",
                "run": run if isinstance(run, str) else None,
                "ts": time.time(),
                "error": f"{what} could not be written to the spool: {safe_repr(exc)}",
            }
        )
    except Exception:  # pragma: no cover - every field above is plain
        return '{"k":"error","run":null,"ts":0,"error":"a record could not be written"}'


def safe_repr(value: Any) -> str:
    """``repr(value)``, or a description of the value when ``repr`` raises."""
    try:
        return repr(value)
    except Exception as exc:
        if isinstance(value, int):  # too many digits for str() (Python's 4,300-digit limit)
            return f"<int of {value.bit_length()} bits, too long to write in decimal>"
        return f"<{type(value).__name__} object; repr() raised {type(exc).__name__}>"


def show(text: str) -> None:
    """Print one offline line; never raises (lone surrogates, a closed or missing stdout)."""
    try:
        print(text)
    except UnicodeEncodeError:
        stream = sys.stdout
        encoding = getattr(stream, "encoding", None) or "utf-8"
        try:
            print(text.encode(encoding, "backslashreplace").decode(encoding, "replace"))
        except Exception:
            pass
    except (OSError, ValueError):  # stdout closed by the script
        pass
