"""Job files: ``ferry submit job.yml`` carries the fields of a ScriptRunConfig.

Example ``job.yml``::

    experiment: diabetes
    source_directory: src          # relative to this file
    script: train.py
    arguments: [--alpha, 0.5]
    compute_target: local
    environment_variables: {SEED: "1"}
    tags: {team: a}

A job file is read defensively (it may come from anyone): at most ``MAX_BYTES``, UTF-8, nesting
at most ``MAX_DEPTH`` levels, and anchors and aliases are allowed only while the document they
expand to stays under ``MAX_NODES`` nodes (an alias counts as a full copy of what it names), so a
"billion laughs" alias bomb is refused after reading its events, in milliseconds and with
bounded memory. Python tags (``!!python/...``) are never constructed (safe loading).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ferry.environment import Environment
from ferry.errors import ConfigError
from ferry.runconfig import RunConfiguration
from ferry.script_run_config import ScriptRunConfig

MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 100
MAX_NODES = 100_000
_SCALARS = (str, int, float, bool, type(None))

ALLOWED = (
    "experiment",
    "source_directory",
    "script",
    "arguments",
    "command",
    "compute_target",
    "environment",
    "environment_variables",
    "max_run_duration_seconds",
    "framework",
    "node_count",
    "tags",
    "run_config",
    "history",
)


@dataclass
class JobFile:
    """A parsed job file: the run configuration, and the experiment and tags to submit with."""

    config: ScriptRunConfig
    experiment: str | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    environment_name: str | None = None


def load_job(path: Path, data: Any = None) -> JobFile:
    """Parse and check a job file; every problem names the key and the allowed ones.

    ``data`` is the file's content when the caller has read it already (a sweep file, whose
    ``sweep:`` section it has taken out)."""
    if data is None:
        data = read_yaml(path, "job file")
    if not isinstance(data, dict):
        raise ConfigError(
            f"job file {path} must be a mapping of keys like 'script:' and 'arguments:'"
        )
    unknown = [k for k in data if k not in ALLOWED]
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r} in job file {path}; allowed keys: {', '.join(ALLOWED)}"
        )
    base = path.parent
    source = Path(str(data.get("source_directory") or "."))
    if not source.is_absolute():
        source = base / source
    rc = (
        RunConfiguration.from_dict(data["run_config"], where=f"{path}: run_config")
        if "run_config" in data
        else RunConfiguration()
    )
    if "script" in data:
        rc.script = _typed(data, "script", str, path)
    if "arguments" in data:
        rc.arguments = _typed(data, "arguments", list, path)
        for item in rc.arguments:
            if not isinstance(item, _SCALARS):
                raise ConfigError(
                    f"{path}: 'arguments' must hold plain values (text or numbers), "
                    f"not a {type(item).__name__}"
                )
    if "command" in data:
        rc.command = _typed(data, "command", (str, list), path)
    if "compute_target" in data:
        rc.target = _typed(data, "compute_target", str, path)
    if "max_run_duration_seconds" in data:
        rc.max_run_duration_seconds = _typed(data, "max_run_duration_seconds", int, path)
    if "framework" in data:
        rc.framework = _typed(data, "framework", str, path)
    if "node_count" in data:
        rc.node_count = _typed(data, "node_count", int, path)
    if "environment_variables" in data:
        variables = _scalar_values(data, "environment_variables", path)
        rc.environment_variables.update(
            {str(k): "" if v is None else str(v) for k, v in variables.items()}
        )
    if "history" in data:
        from ferry.runconfig import HistoryConfiguration

        rc.history = HistoryConfiguration.from_dict(
            _typed(data, "history", dict, path), f"{path}: history"
        )
    env_name = None
    if "environment" in data:
        env = data["environment"]
        if isinstance(env, str):
            env_name = env
        elif isinstance(env, dict):
            rc.environment = Environment.from_dict(env, where=f"{path}: environment")
        else:
            raise ConfigError(f"{path}: environment must be a name or a mapping")
    rc.validate(str(path))
    tags = _scalar_values(data, "tags", path) if "tags" in data else {}
    experiment = _typed(data, "experiment", str, path) if "experiment" in data else None
    config = ScriptRunConfig(str(source), run_config=rc)
    try:
        config.validate()
    except ConfigError as exc:
        raise ConfigError(f"job file {path}: {exc}") from None
    return JobFile(config, experiment, tags, env_name)


def _typed(data: dict[str, Any], key: str, kind: Any, path: Path) -> Any:
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise ConfigError(f"{path}: {key!r} must be a {names}, not {type(value).__name__}")
    return value


def _scalar_values(data: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    """A mapping whose values are plain text, numbers or booleans (nothing nested)."""
    mapping: dict[str, Any] = _typed(data, key, dict, path)
    for name, value in mapping.items():
        if not isinstance(name, _SCALARS) or not isinstance(value, _SCALARS):
            raise ConfigError(
                f"{path}: {key}.{name} must be a plain value (text or a number), not a "
                f"{type(value).__name__}; write it as one string"
            )
    return mapping


def read_yaml(path: Path, what: str) -> Any:
    """Safely load a small YAML file, refusing what could exhaust time, memory or the stack."""
    try:
        with open(path, "rb") as fh:
            chunks, size = [], 0
            while size <= MAX_BYTES and (chunk := fh.read(1 << 16)):
                chunks.append(chunk)
                size += len(chunk)
        raw = b"".join(chunks)
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from exc
    if len(raw) > MAX_BYTES:
        raise ConfigError(
            f"{what} {path} is larger than {MAX_BYTES // (1024 * 1024)} MB; a {what} holds "
            "settings, not data: put data in the source folder or a dataset"
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} {path} is not UTF-8 text (byte {exc.start}); is it a binary file?"
        ) from exc
    try:
        _check_shape(_named(text, path), path, what)
        return yaml.load(_named(text, path), Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {exc}") from exc


_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _named(text: str, path: Path) -> io.StringIO:
    """The text as a stream named after the file, so YAML's messages say where."""
    stream = io.StringIO(text)
    stream.name = str(path)
    return stream


def _check_shape(text: io.StringIO, path: Path, what: str) -> None:
    """Walk the YAML events (no tree is built): refuse deep nesting and documents that aliases
    would expand beyond ``MAX_NODES`` nodes. Sizes are counted per anchor, so the cost is one
    pass over the events however large the expansion would be."""
    anchors: dict[str, int] = {}
    stack: list[list[Any]] = []  # [anchor, expanded size so far] per open collection
    total = 0

    def add(size: int) -> None:
        nonlocal total
        if stack:
            stack[-1][1] += size
            if stack[-1][1] > MAX_NODES:
                raise _too_big(path, what)
        else:
            total += size
            if total > MAX_NODES:
                raise _too_big(path, what)

    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                raise ConfigError(f"{what} {path} nests deeper than {MAX_DEPTH} levels; flatten it")
            stack.append([event.anchor, 1])
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, size = stack.pop()
            if anchor is not None:
                anchors[anchor] = size
            add(size)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor is not None:
                anchors[event.anchor] = 1
            add(1)
        elif isinstance(event, yaml.AliasEvent):
            if any(anchor == event.anchor for anchor, _ in stack):
                raise ConfigError(
                    f"{what} {path}: the alias *{event.anchor} is inside the value it names "
                    "(a value that contains itself); write the value out"
                )
            add(anchors.get(event.anchor or "", 1))


def _too_big(path: Path, what: str) -> ConfigError:
    return ConfigError(
        f"{what} {path} expands to more than {MAX_NODES:,} values through its YAML aliases "
        "(*name); write the values out or use fewer aliases"
    )
