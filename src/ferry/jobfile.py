"""Job files: ``ferry submit job.yml`` carries the fields of a ScriptRunConfig.

Example ``job.yml``::

    experiment: diabetes
    source_directory: src          # relative to this file
    script: train.py
    arguments: [--alpha, 0.5]
    compute_target: local
    environment_variables: {SEED: "1"}
    tags: {team: a}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ferry.environment import Environment
from ferry.errors import ConfigError
from ferry.runconfig import RunConfiguration
from ferry.script_run_config import ScriptRunConfig

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


def load_job(path: Path) -> JobFile:
    """Parse and check a job file; every problem names the key and the allowed ones."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read job file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"job file {path} is not valid YAML: {exc}") from exc
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
        variables = _typed(data, "environment_variables", dict, path)
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
    tags = _typed(data, "tags", dict, path) if "tags" in data else {}
    experiment = _typed(data, "experiment", str, path) if "experiment" in data else None
    return JobFile(ScriptRunConfig(str(source), run_config=rc), experiment, tags, env_name)


def _typed(data: dict[str, Any], key: str, kind: Any, path: Path) -> Any:
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise ConfigError(f"{path}: {key!r} must be a {names}, not {type(value).__name__}")
    return value
