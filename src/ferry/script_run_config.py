"""ScriptRunConfig: what to run (folder, script or command, arguments) and where.

Precedence follows the reference: a given ``run_config`` wins over ``compute_target``,
``environment`` and ``max_run_duration_seconds`` (with a warning); the config's own script,
arguments and command win over the ``run_config``'s.

Example::

    src = ScriptRunConfig(source_directory="src", script="train.py", arguments=["--alpha", 0.5])
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ferry.environment import Environment
from ferry.errors import ConfigError
from ferry.runconfig import (
    MAX_DURATION_SECONDS_DEFAULT,
    DockerConfiguration,
    MpiConfiguration,
    PyTorchConfiguration,
    RunConfiguration,
    TensorflowConfiguration,
)

log = logging.getLogger("ferry")


class ScriptRunConfig:
    """A script (or command) in a source folder, configured to run on a compute target."""

    MAX_DURATION_SECONDS_DEFAULT = MAX_DURATION_SECONDS_DEFAULT

    def __init__(
        self,
        source_directory: str | os.PathLike[str],
        script: str | None = None,
        arguments: list[Any] | None = None,
        run_config: RunConfiguration | None = None,
        _telemetry_values: Any = None,
        compute_target: Any = None,
        environment: Environment | None = None,
        distributed_job_config: Any = None,
        resume_from: Any = None,
        max_run_duration_seconds: int | None = MAX_DURATION_SECONDS_DEFAULT,
        command: str | list[str] | None = None,
        docker_runtime_config: Any = None,
    ) -> None:
        if source_directory is None or str(source_directory) == "":
            raise ConfigError("source_directory is required (the folder holding your script)")
        if arguments is not None and not isinstance(arguments, list | tuple):
            raise ConfigError(
                f"arguments must be a list like ['--alpha', 0.5], not {type(arguments).__name__}"
            )
        self.source_directory = str(source_directory)
        self.script = script
        self.arguments: list[Any] = list(arguments) if arguments is not None else []
        self.command = command
        if run_config is not None:
            if not isinstance(run_config, RunConfiguration):
                raise ConfigError("run_config must be a RunConfiguration")
            ignored = [
                name
                for name, value, default in (
                    ("compute_target", compute_target, None),
                    ("environment", environment, None),
                    ("distributed_job_config", distributed_job_config, None),
                    (
                        "max_run_duration_seconds",
                        max_run_duration_seconds,
                        MAX_DURATION_SECONDS_DEFAULT,
                    ),
                    ("docker_runtime_config", docker_runtime_config, None),
                )
                if value is not default and value != default
            ]
            if ignored:
                log.warning(
                    "run_config is given, so these ScriptRunConfig arguments are ignored: %s",
                    ", ".join(ignored),
                )
            self.run_config = copy.deepcopy(run_config)
        else:
            rc = RunConfiguration()
            rc.target = compute_target if compute_target is not None else "local"
            if environment is not None:
                if not isinstance(environment, Environment):
                    raise ConfigError("environment must be a ferry Environment")
                rc.environment = environment
            rc.max_run_duration_seconds = max_run_duration_seconds
            if distributed_job_config is not None:
                _apply_distributed(rc, distributed_job_config)
            if docker_runtime_config is not None:  # the reference puts it on run_config.docker
                if not isinstance(docker_runtime_config, DockerConfiguration):
                    raise ConfigError("docker_runtime_config must be a DockerConfiguration")
                rc.docker = copy.deepcopy(docker_runtime_config)
            self.run_config = rc
        # the config's own script/arguments/command win; fall back to the run_config's
        if self.script is None and self.run_config.script:
            self.script = self.run_config.script
        if not self.arguments and self.run_config.arguments:
            self.arguments = list(self.run_config.arguments)
        if not self.command and self.run_config.command:
            self.command = self.run_config.command
        self.run_config.script = self.script
        self.run_config.arguments = list(self.arguments)
        self.run_config.command = self.command or ""
        if resume_from is not None:
            self.arguments += ["--resume-from", str(resume_from)]
            self.run_config.arguments = list(self.arguments)

    # validation --------------------------------------------------------------------------
    def validate(self) -> Path:
        """Check the folder and script; returns the resolved source folder."""
        source = Path(self.source_directory).expanduser()
        if not source.is_dir():
            raise ConfigError(f"source_directory {str(source)!r} does not exist or is not a folder")
        source = source.resolve()
        if self.script and self.command:
            raise ConfigError("give either script (with arguments) or command, not both")
        if not self.script and not self.command:
            raise ConfigError("nothing to run: give script='train.py' or command='python train.py'")
        if self.script:
            script_path = Path(self.script)
            candidate = script_path if script_path.is_absolute() else source / script_path
            try:
                rel = candidate.resolve().relative_to(source)
            except ValueError:
                raise ConfigError(
                    f"{self.script} script path doesn't exist inside the source directory "
                    f"{str(source)!r}. The script should be inside the project folder"
                ) from None
            if not candidate.is_file():
                raise ConfigError(
                    f"{str(candidate)!r} script path doesn't exist. The script should be inside "
                    f"the project folder {str(source)!r}"
                )
            self.script = rel.as_posix()
            self.run_config.script = self.script
        self.run_config.validate()
        return source

    def to_dict(self) -> dict[str, Any]:
        return {"sourceDirectory": self.source_directory, **self.run_config.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "job") -> ScriptRunConfig:
        data = dict(data)
        source = data.pop("sourceDirectory", data.pop("source_directory", "."))
        rc = RunConfiguration.from_dict(data, where=where)
        return cls(source_directory=source, run_config=rc)

    def __repr__(self) -> str:
        return (
            f"ScriptRunConfig(source_directory={self.source_directory!r}, script={self.script!r}, "
            f"target={self.run_config.target!r})"
        )


def _apply_distributed(rc: RunConfiguration, cfg: Any) -> None:
    if isinstance(cfg, PyTorchConfiguration):
        rc.framework, rc.communicator = "PyTorch", cfg.communication_backend
        rc.node_count, rc.pytorch = cfg.node_count, cfg
    elif isinstance(cfg, MpiConfiguration):
        rc.framework, rc.communicator = "Python", "IntelMpi"
        rc.node_count, rc.mpi = cfg.node_count, cfg
    elif isinstance(cfg, TensorflowConfiguration):
        rc.framework, rc.communicator = "TensorFlow", "ParameterServer"
        rc.node_count, rc.tensorflow = cfg.worker_count, cfg
    else:
        raise ConfigError(
            "distributed_job_config must be a PyTorchConfiguration, MpiConfiguration or "
            "TensorflowConfiguration"
        )
