"""A dataset's definition as plain data, and the pure rules that turn listings into its files.

A definition is what a version records and what a run receives (JSON in the database)::

    {"kind": "file" | "tabular",
     "sources": [{"datastore": "workspaceblobstore", "path": "mnist/**"}
                 | {"url": "https://…/x.csv"} | {"local": "/abs/folder"}],
     "format": {"type": "delimited", "separator": ",", "header": true, …},   # tabular only
     "transforms": [{"op": "skip", "count": 10}, {"op": "take", "count": 5},
                    {"op": "split", "percentage": 0.8, "seed": 7, "part": 0}, …]}

A file's path inside the dataset is its path below the pattern's base: the folder before the
first wildcard (``mnist/**/*.gz`` → ``mnist``), the folder itself (``mnist/``), or the file's
folder (``mnist/train.gz``). File datasets apply ``skip``/``take``/samples/splits to the file
list; tabular datasets apply them to rows when read (:mod:`ferry.runtime.tabular`).

Example::

    base_of("img/**/*.jpg")                      # "img"
    rel_paths("img/**/*.jpg", ["img/a/1.jpg"])   # {"a/1.jpg": "img/a/1.jpg"}
    apply_transforms(["a", "b", "c"], [{"op": "skip", "count": 1}])   # ["b", "c"]
"""

from __future__ import annotations

import copy
import posixpath
import random
from collections.abc import Mapping, Sequence
from typing import Any

from ferry.data.stores import has_wildcard
from ferry.errors import ConfigError
from ferry.runtime.tabular import apply_transforms as apply_transforms  # one rule for both sides
from ferry.runtime.tabular import split_indices as split_indices

KINDS = ("file", "tabular")
ROW_OPS = ("skip", "take", "sample", "split", "keep_columns", "drop_columns")
DELIMITED_DEFAULTS: dict[str, Any] = {
    "type": "delimited",
    "separator": ",",
    "header": True,
    "encoding": "utf8",
    "infer_column_types": True,
    "set_column_types": None,
    "include_path": False,
    "support_multi_line": False,
    "empty_as_string": False,
    "partition_format": None,
}
PARQUET_DEFAULTS: dict[str, Any] = {
    "type": "parquet",
    "include_path": False,
    "set_column_types": None,
    "partition_format": None,
}


def new_definition(
    kind: str, sources: Sequence[Mapping[str, str]], fmt: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    if kind not in KINDS:
        raise ConfigError(f"a dataset is 'file' or 'tabular', not {kind!r}")
    definition: dict[str, Any] = {"kind": kind, "sources": [dict(s) for s in sources]}
    if kind == "tabular":
        definition["format"] = dict(fmt or DELIMITED_DEFAULTS)
    definition["transforms"] = []
    return definition


def with_transform(definition: Mapping[str, Any], op: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``definition`` with one more transform (datasets are immutable values)."""
    out = copy.deepcopy(dict(definition))
    out["transforms"] = [*out.get("transforms", []), dict(op)]
    return out


def base_of(pattern: str) -> str:
    """The folder before the first wildcard of ``pattern`` ('' for the store's root)."""
    parts = pattern.split("/") if pattern else []
    kept: list[str] = []
    for part in parts:
        if has_wildcard(part):
            return "/".join(kept)
        kept.append(part)
    return "/".join(kept)


def rel_paths(pattern: str, matched: Sequence[str]) -> dict[str, str]:
    """Dataset path → store path for the files ``pattern`` matched (sorted by dataset path).

    A pattern naming one file keeps that file's name; a folder or a wildcard keeps the layout
    below its base.
    """
    base = base_of(pattern)
    if not has_wildcard(pattern) and list(matched) == [pattern]:
        base = posixpath.dirname(pattern)
    out: dict[str, str] = {}
    for path in matched:
        rel = path[len(base) + 1 :] if base and path.startswith(base + "/") else path
        out[rel or posixpath.basename(path)] = path
    return dict(sorted(out.items()))


def single_file(definition: Mapping[str, Any], files: Sequence[str]) -> str | None:
    """The dataset path of the one file a job is given as the file itself, else None.

    The reference gives a job the file's own path only when the dataset's definition names that
    file: one path, no wildcard, no transform (``from_files((ds, 'data/x.csv'))``); a folder or
    a pattern that happens to match one file is still given as the folder, so a script's
    ``os.path.join(folder, 'x.csv')`` keeps working (azureml-core ``DatasetContextManager.
    _is_single_file_no_transform``: the first file's path ends with the path asked for).
    """
    sources = definition.get("sources") or []
    if len(files) != 1 or len(sources) != 1 or definition.get("transforms"):
        return None
    source = sources[0]
    asked = str(source.get("path", source.get("local", source.get("url", ""))))
    if "url" in source:
        from urllib.parse import urlparse

        asked = urlparse(asked).path
    asked = asked.replace("\\", "/").strip("/")
    if not asked or has_wildcard(asked):
        return None
    rel = files[0]
    return rel if asked == rel or asked.endswith("/" + rel) else None


def merge_sources(per_source: Sequence[Mapping[str, Any]]) -> dict[str, tuple[int, Any]]:
    """Dataset path → (source index, origin) over all sources; a path two sources give is an
    error naming both (the dataset would hold two different files under one name)."""
    out: dict[str, tuple[int, Any]] = {}
    for index, paths in enumerate(per_source):
        for rel, origin in paths.items():
            if rel in out:
                raise ConfigError(
                    f"two paths of the dataset give the file {rel!r} (sources {out[rel][0] + 1} "
                    f"and {index + 1}); give paths whose files have different names"
                )
            out[rel] = (index, origin)
    return dict(sorted(out.items()))


def check_count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{what} must be a whole number ≥ 0, not {value!r}")
    return value


def check_fraction(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigError(f"{what} must be a number between 0 and 1, not {value!r}")
    return float(value)


def new_seed() -> int:
    """A seed to record when the caller gave none (so a split's halves stay complementary)."""
    return random.SystemRandom().randrange(2**31)
