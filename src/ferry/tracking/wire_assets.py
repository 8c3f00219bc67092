"""Asset records (datastores, dataset versions, models, lineage) as JSON and back.

The asset half of :mod:`ferry.tracking.wire`: the server's asset routes and the HTTP store
agree on these shapes. Decoding checks every field against the record's annotation (text,
numbers, flags, mappings, lists), so a client's wrong type is a :class:`ConfigError` naming
the field, never an error deep in the database.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, TypeVar

from ferry.errors import ConfigError
from ferry.tracking.assets import DatasetRecord, DatastoreRecord, ModelRecord, RunDatasetRecord

R = TypeVar("R", DatastoreRecord, DatasetRecord, ModelRecord, RunDatasetRecord)

_KINDS: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "Mapping": (dict,),
    "tuple": (list, tuple),
}


def to_wire(record: Any) -> dict[str, Any]:
    return asdict(record)


def from_wire(cls: type[R], value: Any) -> R:
    """A record of ``cls`` from a client's dict, each field checked against its annotation."""
    what = cls.__name__.removesuffix("Record").lower()
    if not isinstance(value, dict):
        raise ConfigError(f"a {what} must be a JSON object, got {str(value)[:100]!r}")
    known = {f.name: f for f in fields(cls)}
    unknown = set(value) - set(known)
    if unknown:
        raise ConfigError(f"unknown {what} fields {sorted(unknown)}")
    data: dict[str, Any] = {}
    for name, spec in known.items():
        if name not in value:
            continue
        item: Any = value[name]
        annotation = str(spec.type)
        if item is None and "None" in annotation:
            data[name] = None
            continue
        base = annotation.split("|")[0].strip().split("[")[0]
        allowed = _KINDS.get(base, (object,))
        bad_bool = isinstance(item, bool) and base in ("int", "float")
        if bad_bool or not isinstance(item, allowed):
            raise ConfigError(f"{what} field {name!r} is not valid: {str(item)[:100]!r}")
        parts: Any = value[name]
        if base == "tuple":
            item = tuple(tuple(part) if isinstance(part, list) else part for part in parts)
        if base == "Mapping" and not all(isinstance(k, str) for k in parts):
            raise ConfigError(f"{what} field {name!r} must map text keys")
        data[name] = item
    try:
        return cls(**data)
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"a {what} needs {exc}") from None
