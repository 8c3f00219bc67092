"""RunConfiguration and its sections, with the reference's fields, defaults and wire names.

``to_dict()`` gives the reference's camelCase shape (the ``runDefinition`` of a run);
``from_dict()`` accepts camelCase or snake_case and names unknown keys.

Example::

    rc = RunConfiguration(script="train.py", arguments=["--alpha", 0.5])
    rc.environment_variables["SEED"] = "1"
    assert RunConfiguration.from_dict(rc.to_dict()).to_dict() == rc.to_dict()
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ferry.environment import Environment
from ferry.errors import ConfigError

log = logging.getLogger("ferry")

MAX_DURATION_SECONDS_DEFAULT = 2_592_000  # 30 days, as the reference
FRAMEWORKS = ("Python", "PySpark", "CNTK", "TensorFlow", "PyTorch")
COMMUNICATORS = ("None", "ParameterServer", "OpenMpi", "IntelMpi", "Nccl", "Gloo", "ParallelTask")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass
class _Section:
    """A section serialized as a flat camelCase dict."""

    def to_dict(self) -> dict[str, Any]:
        return {_camel(f.name): _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "") -> Any:
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"{where or cls.__name__} must be a mapping, not {type(data).__name__}"
            )
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            name = key if key in known else _snake(str(key))
            if name not in known:
                allowed = ", ".join(sorted(_camel(k) for k in known))
                raise ConfigError(
                    f"unknown key {key!r} in {where or cls.__name__}; allowed keys: {allowed}"
                )
            kwargs[name] = value
        return cls(**kwargs)


def _plain(value: Any) -> Any:
    if isinstance(value, _Section):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@dataclass
class HistoryConfiguration(_Section):
    output_collection: bool = True
    snapshot_project: bool = True
    directories_to_watch: list[str] = field(default_factory=lambda: ["logs"])


@dataclass
class DockerConfiguration(_Section):
    """How a run's container is started: ``use_docker`` runs the job in its environment's
    image (ferry's default base image when the environment names none) on the targets that
    run containers (local, ssh); ``shm_size`` and ``arguments`` (extra ``docker run``
    options) shape the container. As in the reference, these win over the environment's
    deprecated ``docker.enabled/shm_size/arguments/shared_volumes`` (see
    :func:`ferry.envbuild.docker_spec.merge_run_docker`)."""

    use_docker: bool = False
    shared_volumes: bool = True
    arguments: list[str] = field(default_factory=list)
    shm_size: str = "2g"

    def __post_init__(self) -> None:
        from ferry.envbuild.docker_spec import check_shm_size

        self.shm_size = check_shm_size(self.shm_size, "DockerConfiguration.shm_size")
        if not isinstance(self.arguments, list | tuple) or not all(
            isinstance(a, str) for a in self.arguments
        ):
            raise ConfigError(
                "DockerConfiguration.arguments must be a list of strings, like "
                "['--ulimit', 'nofile=1024']"
            )
        self.arguments = list(self.arguments)


@dataclass
class SparkConfiguration(_Section):
    configuration: dict[str, Any] = field(
        default_factory=lambda: {
            "spark.app.name": "Azure ML Experiment",
            "spark.yarn.maxAppAttempts": 1,
        }
    )


@dataclass
class HdiConfiguration(_Section):
    yarn_deploy_mode: str = "cluster"


@dataclass
class TensorflowConfiguration(_Section):
    worker_count: int = 1
    parameter_server_count: int = 1


@dataclass
class MpiConfiguration(_Section):
    process_count_per_node: int = 1
    node_count: int = 1


@dataclass
class PyTorchConfiguration(_Section):
    communication_backend: str = "Nccl"
    process_count: int | None = None
    node_count: int = 1

    def __post_init__(self) -> None:
        backend = str(self.communication_backend).lower()
        if backend not in ("nccl", "gloo"):
            raise ConfigError(
                f"communication_backend {self.communication_backend!r} is not supported; "
                "use 'Nccl' or 'Gloo'"
            )
        self.communication_backend = backend


@dataclass
class ParallelTaskConfiguration(_Section):
    max_retries_per_worker: int = 0
    worker_count_per_node: int = 1
    terminal_exit_codes: list[int] | None = None


@dataclass
class AmlComputeConfiguration(_Section):
    vm_size: str | None = None
    vm_priority: str | None = None
    retain_cluster: bool = False
    name: str | None = None
    cluster_max_node_count: int | None = None


_SECTIONS: dict[str, type[_Section]] = {
    "history": HistoryConfiguration,
    "docker": DockerConfiguration,
    "spark": SparkConfiguration,
    "hdi": HdiConfiguration,
    "tensorflow": TensorflowConfiguration,
    "mpi": MpiConfiguration,
    "pytorch": PyTorchConfiguration,
    "paralleltask": ParallelTaskConfiguration,
    "amlcompute": AmlComputeConfiguration,
}

# serialized order of the reference
_ORDER = [
    "script",
    "arguments",
    "target",
    "framework",
    "communicator",
    "maxRunDurationSeconds",
    "nodeCount",
    "priority",
    "environment",
    "history",
    "spark",
    "docker",
    "hdi",
    "tensorflow",
    "mpi",
    "pytorch",
    "paralleltask",
    "dataReferences",
    "data",
    "datacaches",
    "outputData",
    "sourceDirectoryDataStore",
    "amlcompute",
    "autoClusterComputeSpecification",
    "kubernetescompute",
    "credentialPassthrough",
    "command",
    "environmentVariables",
    "applicationEndpoints",
]


class RunConfiguration:
    """How to run a job: script, arguments, target, framework, environment and sections."""

    def __init__(
        self,
        script: str | None = None,
        arguments: list[Any] | None = None,
        framework: str | None = None,
        communicator: str | None = None,
        conda_dependencies: Any = None,
        _history_enabled: bool | None = None,
        _path: str | None = None,
        _name: str | None = None,
        command: str | list[str] | None = None,
    ) -> None:
        self.script = script
        self.arguments: list[Any] = list(arguments or [])
        self.command: str | list[str] = command or ""
        self._target = "local"
        self.framework = framework or "Python"
        self.communicator = communicator or "None"
        self.max_run_duration_seconds: int | None = None
        self.node_count = 1
        self.priority: int | None = None
        # the reference's default: not user-managed, so packages added to it are installed;
        # while it declares nothing, no build happens (the target's own interpreter runs the job)
        self.environment: Environment = Environment("default-environment")
        if conda_dependencies is not None:
            self.environment.python.conda_dependencies = conda_dependencies
        self.history = HistoryConfiguration()
        if _history_enabled is not None:
            self.history.output_collection = bool(_history_enabled)
        self.spark = SparkConfiguration()
        self.docker = DockerConfiguration()
        self.hdi = HdiConfiguration()
        self.tensorflow = TensorflowConfiguration()
        self.mpi = MpiConfiguration()
        self.pytorch = PyTorchConfiguration()
        self.paralleltask = ParallelTaskConfiguration()
        self.amlcompute = AmlComputeConfiguration()
        self.data_references: dict[str, Any] = {}
        self.data: dict[str, Any] = {}
        self.datacaches: list[Any] = []
        self.output_data: dict[str, Any] = {}
        self.source_directory_data_store: str | None = None
        self.auto_cluster_compute_specification: Any = None
        self.kubernetescompute: Any = None
        self.credential_passthrough = False
        self.environment_variables: dict[str, str] = {}
        self.services: dict[str, Any] = {}

    @property
    def target(self) -> str:
        return self._target

    @target.setter
    def target(self, value: Any) -> None:
        name = getattr(value, "name", value)
        if not isinstance(name, str) or not name.strip():
            raise ConfigError("the compute target must be a non-empty name or a ComputeTarget")
        self._target = name

    # serialization ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "script": self.script,
            "arguments": [
                a if isinstance(a, str | int | float | bool) else str(a) for a in self.arguments
            ],
            "target": self.target,
            "framework": self.framework,
            "communicator": self.communicator,
            "maxRunDurationSeconds": self.max_run_duration_seconds,
            "nodeCount": self.node_count,
            "priority": self.priority,
            "environment": self.environment.to_dict(),
            "dataReferences": self.data_references,
            "data": self.data,
            "datacaches": self.datacaches,
            "outputData": self.output_data,
            "sourceDirectoryDataStore": self.source_directory_data_store,
            "autoClusterComputeSpecification": self.auto_cluster_compute_specification,
            "kubernetescompute": self.kubernetescompute,
            "credentialPassthrough": self.credential_passthrough,
            "command": self.command,
            "environmentVariables": dict(self.environment_variables),
            "applicationEndpoints": self.services,
        }
        for name in _SECTIONS:
            values[name] = getattr(self, name).to_dict()
        return {key: values[key] for key in _ORDER}

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], where: str = "run configuration"
    ) -> RunConfiguration:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where} must be a mapping, not {type(data).__name__}")
        rc = cls()
        allowed = {_snake(k): k for k in _ORDER} | {"services": "applicationEndpoints"}
        plain = {
            "script",
            "arguments",
            "target",
            "framework",
            "communicator",
            "max_run_duration_seconds",
            "node_count",
            "priority",
            "credential_passthrough",
            "command",
            "source_directory_data_store",
            "auto_cluster_compute_specification",
            "kubernetescompute",
            "data_references",
            "data",
            "datacaches",
            "output_data",
        }
        for key, value in data.items():
            name = key if key in allowed else _snake(str(key))
            if name not in allowed:
                raise ConfigError(
                    f"unknown key {key!r} in {where}; allowed keys: {', '.join(_ORDER)}"
                )
            if name in _SECTIONS:
                setattr(rc, name, _SECTIONS[name].from_dict(value or {}, f"{where}.{key}"))
            elif name == "environment":
                rc.environment = Environment.from_dict(value or {}, where=f"{where}.{key}")
            elif name in ("environment_variables",):
                rc.environment_variables = _str_mapping(value, f"{where}.{key}")
            elif name in ("application_endpoints", "services"):
                rc.services = dict(value or {})
            elif name in plain:
                setattr(rc, name, value)
        rc.validate(where)
        return rc

    def validate(self, where: str = "run configuration") -> None:
        """Check field types and allowed values; raises ConfigError naming the field."""
        if self.arguments is None:
            self.arguments = []
        if not isinstance(self.arguments, list):
            raise ConfigError(
                f"{where}: arguments must be a list, not {type(self.arguments).__name__}"
            )
        if self.framework.lower() not in {f.lower() for f in FRAMEWORKS}:
            raise ConfigError(
                f"{where}: unknown framework {self.framework!r}; use one of {', '.join(FRAMEWORKS)}"
            )
        self.framework = next(f for f in FRAMEWORKS if f.lower() == self.framework.lower())
        if self.max_run_duration_seconds is not None and (
            not isinstance(self.max_run_duration_seconds, int) or self.max_run_duration_seconds <= 0
        ):
            raise ConfigError(
                f"{where}: max_run_duration_seconds must be a positive whole number of seconds"
            )
        if not isinstance(self.node_count, int) or self.node_count < 1:
            raise ConfigError(f"{where}: node_count must be a whole number ≥ 1")

    def save(self, path: str | Path | None = None, name: str | None = None) -> Path:
        """Write ``<path>/.ferry/<name>.runconfig`` (YAML)."""
        import yaml

        folder = Path(path or ".") / ".ferry"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{name or 'default'}.runconfig"
        target.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        return target

    @classmethod
    def load(cls, path: str | Path, name: str | None = None) -> RunConfiguration:
        import yaml

        p = Path(path)
        if p.is_dir():
            p = p / ".ferry" / f"{name or 'default'}.runconfig"
        try:
            data = yaml.safe_load(p.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read run configuration {p}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"run configuration {p} is not valid YAML: {exc}") from exc
        return cls.from_dict(data or {}, where=str(p))

    def __repr__(self) -> str:
        return f"RunConfiguration(script={self.script!r}, target={self.target!r})"


def _str_mapping(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping of names to values")
    out = {}
    for k, v in value.items():
        if not isinstance(k, str) or not k:
            raise ConfigError(f"{where}: variable names must be non-empty strings, got {k!r}")
        out[k] = "" if v is None else str(v)
    return out
