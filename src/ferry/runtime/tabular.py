"""Reading a tabular dataset's files into a pandas DataFrame — the same code inside a job and
on the driver (``TabularDataset.to_pandas_dataframe``).

The standard library only, plus pandas (and pyarrow for parquet) imported when a table is
read: a job that reads tables needs them in its environment, as the reference's jobs needed
``azureml-dataprep[pandas]``. Row transforms (``skip``, ``take``, ``sample``, ``split``) and
column choices (``keep_columns``, ``drop_columns``) apply in the order they were made;
:func:`apply_transforms` is also what file datasets use on their file lists.

Example::

    frame = read_table(["/data/a.csv"], ["a.csv"], {"type": "delimited", "separator": ","}, [])
"""

from __future__ import annotations

import importlib
import random
from typing import Any, List, Mapping, Sequence, Tuple


def split_indices(count: int, percentage: float, seed: int) -> Tuple[List[int], List[int]]:
    """A seeded split of ``range(count)``: about ``percentage`` of it first, the rest second
    (each half in the original order)."""
    order = list(range(count))
    random.Random(seed).shuffle(order)
    cut = round(count * percentage)
    return sorted(order[:cut]), sorted(order[cut:])


def apply_transforms(items: Sequence[Any], transforms: Sequence[Mapping[str, Any]]) -> List[Any]:
    """``skip``, ``take``, ``sample`` and ``split`` over a list, in order (column choices are
    ignored here)."""
    out = list(items)
    for op in transforms:
        kind = op.get("op")
        if kind == "skip":
            out = out[int(op["count"]) :]
        elif kind == "take":
            out = out[: int(op["count"])]
        elif kind == "sample":
            rng = random.Random(op.get("seed"))
            out = [item for item in out if rng.random() < float(op["probability"])]
        elif kind == "split":
            first, second = split_indices(len(out), float(op["percentage"]), int(op["seed"]))
            chosen = first if int(op["part"]) == 0 else second
            out = [out[i] for i in chosen]
    return out


_CASTS = {"string": "str", "str": "str", "int": "Int64", "long": "Int64", "float": "float64",
          "double": "float64", "bool": "boolean", "boolean": "boolean"}  # fmt: skip


def read_table(
    paths: Sequence[str],
    names: Sequence[str],
    fmt: Mapping[str, Any],
    transforms: Sequence[Mapping[str, Any]],
) -> Any:
    """The rows of the files ``paths`` (dataset paths ``names``) as one DataFrame."""
    try:
        pandas = importlib.import_module("pandas")
    except ImportError:
        raise ImportError(
            "reading a tabular dataset needs pandas in the job's environment (and pyarrow for "
            "parquet): add them to its packages"
        ) from None
    frames = []
    for path, name in zip(paths, names):
        frame = _read_one(pandas, path, fmt)
        if fmt.get("include_path"):
            frame.insert(0, "Path", "/" + name)
        frames.append(frame)
    table = pandas.concat(frames, ignore_index=True) if frames else pandas.DataFrame()
    table = _cast(pandas, table, fmt.get("set_column_types") or {})
    for op in transforms:
        kind = op.get("op")
        if kind == "keep_columns":
            table = table[[c for c in op["columns"] if c in table.columns]]
        elif kind == "drop_columns":
            table = table.drop(columns=[c for c in op["columns"] if c in table.columns])
        else:
            rows = apply_transforms(range(len(table)), [op])
            table = table.iloc[rows]
    return table.reset_index(drop=True)


def _read_one(pandas: Any, path: str, fmt: Mapping[str, Any]) -> Any:
    if fmt.get("type") == "parquet":
        return pandas.read_parquet(path)
    options = {
        "sep": fmt.get("separator", ","),
        "header": 0 if fmt.get("header", True) else None,
        "encoding": _encoding(fmt.get("encoding", "utf8")),
    }
    if not fmt.get("infer_column_types", True):
        options["dtype"] = str
    if fmt.get("empty_as_string"):
        options["keep_default_na"] = False
    frame = pandas.read_csv(path, **options)
    if not fmt.get("header", True):
        frame.columns = [f"Column{i + 1}" for i in range(len(frame.columns))]
    return frame


def _encoding(name: str) -> str:
    return {"utf8": "utf-8", "iso88591": "latin-1", "latin1": "latin-1", "ascii": "ascii",
            "utf16": "utf-16", "windows1252": "cp1252"}.get(str(name).lower(), str(name))  # fmt: skip


def _cast(pandas: Any, table: Any, types: Mapping[str, Any]) -> Any:
    for column, wanted in types.items():
        if column not in table.columns:
            continue
        kind = str(wanted.get("type") if isinstance(wanted, Mapping) else wanted).lower()
        if kind == "datetime":
            formats = wanted.get("formats") if isinstance(wanted, Mapping) else None
            fmt = formats[0] if formats else None
            table[column] = pandas.to_datetime(table[column], format=fmt, errors="coerce")
        elif kind in _CASTS:
            target = _CASTS[kind]
            if target in ("Int64", "float64"):
                table[column] = pandas.to_numeric(table[column], errors="coerce").astype(target)
            else:
                table[column] = table[column].astype(target)
    return table
