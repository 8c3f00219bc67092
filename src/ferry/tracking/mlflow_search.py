"""MLflow's search syntax, read into ferry's :class:`~ferry.tracking.search.Clause` s.

``metrics.mse < 3000 and tags.team = 'a' and params.alpha IN ('0.1', '0.5')`` and order-by
terms such as ``metrics.mse ASC`` or ``attributes.start_time DESC``. Keys may be quoted with
backticks or double quotes (``metrics.`val loss```). MLflow's attribute names are mapped onto
ferry's: ``run_name`` → the display name, ``run_id`` → the id, ``start_time``/``end_time`` in
milliseconds → seconds, and ``status`` in MLflow's words (``FINISHED``) → ferry's statuses.

Anything else is an :class:`~ferry.tracking.mlflow_api.MlflowError`-compatible
:class:`~ferry.errors.ConfigError` naming the part that could not be read.
"""

from __future__ import annotations

import re
from typing import Any

from ferry.errors import ConfigError
from ferry.status import RunStatus
from ferry.tracking.search import Clause, OrderBy

_ENTITIES = {
    "metric": "metric",
    "metrics": "metric",
    "param": "property",
    "params": "property",
    "parameter": "property",
    "parameters": "property",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
}
_ATTRIBUTES = {
    "run_id": "id",
    "run_name": "display_name",
    "status": "status",
    "start_time": "start_time",
    "end_time": "end_time",
    "created": "created_at",
    "duration": "duration",  # ferry's: seconds from start to end
    "experiment": "experiment",
    "target": "target",
    "run_type": "run_type",
    "name": "name",  # experiments
}
_MLFLOW_STATUSES: dict[str, tuple[str, ...]] = {
    "FINISHED": (RunStatus.COMPLETED.value,),
    "FAILED": (RunStatus.FAILED.value,),
    "KILLED": (RunStatus.CANCELED.value,),
    "SCHEDULED": tuple(
        s.value
        for s in (
            RunStatus.NOT_STARTED,
            RunStatus.QUEUED,
            RunStatus.UNAPPROVED,
            RunStatus.PROVISIONING,
        )
    ),
}
_MLFLOW_STATUSES["RUNNING"] = tuple(
    s.value
    for s in RunStatus
    if not s.is_terminal() and s.value not in _MLFLOW_STATUSES["SCHEDULED"]
)
#: ferry's own status names work too (``status = 'Completed'``), in any case
_FERRY_STATUSES: dict[str, tuple[str, ...]] = {s.value.lower(): (s.value,) for s in RunStatus}

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
      | (?P<op>!=|>=|<=|=|<|>|\(|\)|,)
      | (?P<ident>[A-Za-z_]\w*\.(?:`[^`]*`|"[^"]*"|[\w.\-/:]+)|[A-Za-z_]\w*)
    )""",
    re.VERBOSE,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ConfigError(f"cannot read the search filter at {text[pos : pos + 30]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"`":
        body = text[1:-1]
        return re.sub(r"\\(.)", r"\1", body) if text[0] != "`" else body
    return text


def _identifier(text: str, *, experiment: bool) -> tuple[str, str]:
    if "." in text:
        entity, key = text.split(".", 1)
    else:
        entity, key = "attribute", text
    kind = _ENTITIES.get(entity.lower())
    key = _unquote(key.strip())
    if kind is None:
        raise ConfigError(
            f"search filters name metrics.<key>, params.<key>, tags.<key> or attributes.<key>, "
            f"not {text!r}"
        )
    if kind == "attribute":
        mapped = _ATTRIBUTES.get(key)
        if mapped is None or (mapped == "name") != experiment:
            known = "name" if experiment else ", ".join(k for k in _ATTRIBUTES if k != "name")
            raise ConfigError(f"unknown attribute {key!r} in a search filter; one of {known}")
        key = mapped
    return kind, key


def _value(kind: str, text: str) -> Any:
    if kind == "num":
        return float(text)
    if kind == "str":
        return _unquote(text)
    raise ConfigError(f"expected a value in the search filter, got {text!r}")


def parse_filter(text: str, *, experiment: bool = False) -> list[Clause]:
    """The clauses of an MLflow filter string (joined by AND)."""
    tokens = _tokens(text)
    clauses: list[Clause] = []
    i = 0
    while i < len(tokens):
        kind, word = tokens[i]
        if kind != "ident":
            raise ConfigError(f"a search filter clause starts with a key, not {word!r}")
        entity, key = _identifier(word, experiment=experiment)
        i += 1
        if i >= len(tokens):
            raise ConfigError(f"the search filter ends after {word!r}; add a comparison")
        op = tokens[i][1].upper()
        if op == "NOT" and i + 1 < len(tokens) and tokens[i + 1][1].upper() == "IN":
            op, i = "NOT IN", i + 1
        i += 1
        if op in ("IN", "NOT IN"):
            values, i = _list(tokens, i)
            clauses.append(_clause(entity, key, op, tuple(values)))
        elif op in ("=", "!=", ">", ">=", "<", "<=", "LIKE", "ILIKE"):
            if i >= len(tokens):
                raise ConfigError(f"the search filter ends after {op}; add a value")
            clauses.append(_clause(entity, key, op, _value(*tokens[i])))
            i += 1
        else:
            raise ConfigError(f"unknown comparison {op!r} in the search filter")
        if i < len(tokens):
            if tokens[i][1].upper() != "AND":
                raise ConfigError(f"search filter clauses are joined by AND, got {tokens[i][1]!r}")
            i += 1
    return clauses


def _list(tokens: list[tuple[str, str]], i: int) -> tuple[list[Any], int]:
    if i >= len(tokens) or tokens[i][1] != "(":
        raise ConfigError("IN needs a list of values in parentheses: IN ('a', 'b')")
    values: list[Any] = []
    i += 1
    while i < len(tokens) and tokens[i][1] != ")":
        if tokens[i][1] != ",":
            values.append(_value(*tokens[i]))
        i += 1
    if i >= len(tokens):
        raise ConfigError("an IN list is missing its closing parenthesis")
    return values, i + 1


def _clause(entity: str, key: str, op: str, value: Any) -> Clause:
    if entity == "metric":
        if op not in ("IN", "NOT IN") and not isinstance(value, float):
            raise ConfigError(f"metric {key!r} is compared with a number, got {value!r}")
        return Clause(entity, key, op, value)
    if isinstance(value, float) and entity in ("tag", "property"):
        raise ConfigError(f"{entity} values are text: quote {value!r}")
    if entity == "attribute" and key == "status":
        return _status_clause(op, value)
    if entity == "attribute" and key in ("start_time", "end_time"):
        if not isinstance(value, float):
            raise ConfigError(f"{key} is compared with a number of milliseconds")
        return Clause(entity, key, op, value / 1000)
    return Clause(entity, key, op, value)


def _status_clause(op: str, value: Any) -> Clause:
    wanted = value if isinstance(value, tuple) else (value,)
    statuses: list[str] = []
    for name in wanted:
        found = _MLFLOW_STATUSES.get(str(name).upper()) or _FERRY_STATUSES.get(str(name).lower())
        if found is None:
            raise ConfigError(
                f"unknown run status {name!r}; one of {', '.join(_MLFLOW_STATUSES)} "
                f"(MLflow's) or {', '.join(s.value for s in RunStatus)}"
            )
        statuses.extend(found)
    if op in ("=", "IN"):
        return Clause("attribute", "status", "IN", tuple(statuses))
    if op in ("!=", "NOT IN"):
        return Clause("attribute", "status", "NOT IN", tuple(statuses))
    raise ConfigError(f"run statuses are compared with =, !=, IN or NOT IN, not {op}")


def parse_order_by(terms: list[str]) -> list[OrderBy]:
    """MLflow's order-by terms (``metrics.mse DESC``)."""
    out = []
    for term in terms:
        text = term.strip()
        ascending = True
        upper = text.upper()
        if upper.endswith(" DESC"):
            ascending, text = False, text[:-5].strip()
        elif upper.endswith(" ASC"):
            text = text[:-4].strip()
        kind, key = _identifier(text, experiment=False)
        out.append(OrderBy(kind, key, ascending))
    return out
