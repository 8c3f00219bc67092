"""Environment: the software a run needs, with the reference's sections.

A user-managed environment runs with an existing interpreter (by default the one running ferry);
otherwise ferry builds the environment from ``python.conda_dependencies`` (see
:mod:`ferry.envbuild`). Specs serialize to plain dicts (camelCase, as the reference).

Example::

    env = Environment("local-python")
    env.python.user_managed_dependencies = True
    env.environment_variables["OMP_NUM_THREADS"] = "1"
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ferry.errors import ConfigError


@dataclass
class CondaDependencies:
    """Packages of a built environment: Python version, pip and conda packages."""

    python_version: str | None = None
    pip_packages: list[str] = field(default_factory=list)
    conda_packages: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    pip_options: list[str] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        pip_indexurl: str | None = None,
        pip_packages: list[str] | None = None,
        conda_packages: list[str] | None = None,
        python_version: str | None = None,
        pin_sdk_version: bool = True,
    ) -> CondaDependencies:
        options = [f"--index-url {pip_indexurl}"] if pip_indexurl else []
        return cls(
            python_version=python_version,
            pip_packages=list(pip_packages or []),
            conda_packages=list(conda_packages or []),
            pip_options=options,
        )

    def add_pip_package(self, pip_package: str) -> None:
        if pip_package not in self.pip_packages:
            self.pip_packages.append(pip_package)

    def add_conda_package(self, conda_package: str) -> None:
        if conda_package not in self.conda_packages:
            self.conda_packages.append(conda_package)

    def set_python_version(self, version: str) -> None:
        self.python_version = version

    def to_dict(self) -> dict[str, Any]:
        return {
            "pythonVersion": self.python_version,
            "pipPackages": list(self.pip_packages),
            "condaPackages": list(self.conda_packages),
            "channels": list(self.channels),
            "pipOptions": list(self.pip_options),
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any] | None, where: str = "condaDependencies"
    ) -> CondaDependencies:
        data = dict(data or {})
        keys = {
            "pythonVersion": "python_version",
            "pipPackages": "pip_packages",
            "condaPackages": "conda_packages",
            "channels": "channels",
            "pipOptions": "pip_options",
        }
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            name = keys.get(key, key if key in keys.values() else None)
            if name is None:
                raise ConfigError(
                    f"unknown key {key!r} in {where}; allowed keys: {', '.join(keys)}"
                )
            kwargs[name] = value
        return cls(**kwargs)


@dataclass
class PythonSection:
    """How Python is provided: user-managed interpreter or a built environment."""

    user_managed_dependencies: bool = False
    interpreter_path: str = field(default_factory=lambda: sys.executable)
    conda_dependencies: CondaDependencies = field(default_factory=CondaDependencies)
    base_conda_environment: str | None = None


@dataclass
class DockerSection:
    """Recorded for targets that run containers; the local target runs without Docker."""

    enabled: bool = False
    base_image: str | None = None
    base_dockerfile: str | None = None
    arguments: list[str] = field(default_factory=list)


@dataclass
class SparkPackage:
    group: str
    artifact: str
    version: str


@dataclass
class SparkSection:
    repositories: list[str] = field(default_factory=list)
    packages: list[SparkPackage] = field(default_factory=list)
    precache_packages: bool = True


class Environment:
    """A named, versioned software environment for runs."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError("an environment name must be a non-empty string")
        default = bool(kwargs.pop("_default", False))
        self.name = name
        self.version: int | None = kwargs.pop("version", None)
        self.python = PythonSection()
        self.docker = DockerSection()
        self.spark = SparkSection()
        self.environment_variables: dict[str, str] = {}
        # ferry's default environment: the interpreter running ferry, nothing to build
        if default:
            self.python.user_managed_dependencies = True
        if kwargs:
            raise ConfigError(f"unknown Environment arguments: {', '.join(sorted(kwargs))}")

    def clone(self, new_name: str) -> Environment:
        clone = Environment.from_dict(self.to_dict())
        clone.name = new_name
        clone.version = None
        return clone

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "environmentVariables": dict(self.environment_variables),
            "python": {
                "userManagedDependencies": self.python.user_managed_dependencies,
                "interpreterPath": self.python.interpreter_path,
                "condaDependencies": self.python.conda_dependencies.to_dict(),
                "baseCondaEnvironment": self.python.base_conda_environment,
            },
            "docker": {
                "enabled": self.docker.enabled,
                "baseImage": self.docker.base_image,
                "baseDockerfile": self.docker.base_dockerfile,
                "arguments": list(self.docker.arguments),
            },
            "spark": {
                "repositories": list(self.spark.repositories),
                "packages": [
                    {"group": p.group, "artifact": p.artifact, "version": p.version}
                    for p in self.spark.packages
                ],
                "precachePackages": self.spark.precache_packages,
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "environment") -> Environment:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where} must be a mapping")
        allowed = {"name", "version", "environmentVariables", "python", "docker", "spark"}
        unknown = set(data) - allowed
        if unknown:
            raise ConfigError(
                f"unknown key {sorted(unknown)[0]!r} in {where}; allowed keys: {', '.join(sorted(allowed))}"
            )
        env = cls(str(data.get("name") or "default-environment"))
        env.version = data.get("version")
        env.environment_variables = {
            str(k): str(v) for k, v in (data.get("environmentVariables") or {}).items()
        }
        py = dict(data.get("python") or {})
        py_keys = {
            "userManagedDependencies",
            "interpreterPath",
            "condaDependencies",
            "baseCondaEnvironment",
        }
        if set(py) - py_keys:
            raise ConfigError(
                f"unknown key {sorted(set(py) - py_keys)[0]!r} in {where}.python; "
                f"allowed keys: {', '.join(sorted(py_keys))}"
            )
        env.python.user_managed_dependencies = bool(py.get("userManagedDependencies", False))
        if py.get("interpreterPath"):
            env.python.interpreter_path = str(py["interpreterPath"])
        env.python.conda_dependencies = CondaDependencies.from_dict(
            py.get("condaDependencies"), f"{where}.python.condaDependencies"
        )
        env.python.base_conda_environment = py.get("baseCondaEnvironment")
        docker = dict(data.get("docker") or {})
        env.docker = DockerSection(
            enabled=bool(docker.get("enabled", False)),
            base_image=docker.get("baseImage"),
            base_dockerfile=docker.get("baseDockerfile"),
            arguments=list(docker.get("arguments") or []),
        )
        spark = dict(data.get("spark") or {})
        env.spark = SparkSection(
            repositories=list(spark.get("repositories") or []),
            packages=[SparkPackage(**p) for p in spark.get("packages") or []],
            precache_packages=bool(spark.get("precachePackages", True)),
        )
        return env

    def __repr__(self) -> str:
        return f"Environment(name={self.name!r}, version={self.version!r})"
