"""Environment: the software a run needs, with the reference's sections, registry and files.

A user-managed environment runs with an existing interpreter (``Environment(name,
_default=True)`` is ferry's default: the interpreter running ferry). Otherwise ferry builds the
environment from ``python.conda_dependencies`` with uv, once per specification hash, and reuses it
(see :mod:`ferry.envbuild`). Specs serialize to plain dicts (camelCase, as the reference).

Example::

    env = Environment.from_pip_requirements("sk", "requirements.txt")
    env.environment_variables["OMP_NUM_THREADS"] = "1"
    env.register(ws)                                  # version 1, 2, ... as the spec changes
    Environment.get(ws, "sk").version                 # the latest
    Environment.get(ws, "ferry-sklearn")              # curated, ready without registration
"""

from __future__ import annotations

import builtins
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry.envbuild.conda import CondaDependencies, parse_conda_yaml, read_conda_file
from ferry.envbuild.curated import CURATED, CURATED_PREFIX, CURATED_VERSION, curated_spec
from ferry.envbuild.requirements import read_requirements
from ferry.errors import ConfigError

if TYPE_CHECKING:
    from ferry.envbuild import ResolvedEnvironment

__all__ = [
    "CondaDependencies",
    "DockerSection",
    "Environment",
    "PythonSection",
    "SparkPackage",
    "SparkSection",
]

ENV_FILE = "azureml_environment.json"
CONDA_FILE = "conda_dependencies.yml"
# Keys the reference writes that ferry reads and ignores (so its saved folders load here).
_REFERENCE_ONLY = {
    "": {"databricks", "r", "inferencingStackVersion", "assetId"},
    "python": {"condaDependenciesFile"},
    "docker": {"baseImageRegistry", "platform", "sharedVolumes", "shmSize", "gpuSupport",
               "buildContext"},
}  # fmt: skip


@dataclass
class PythonSection:
    """How Python is provided: a user-managed interpreter or an environment ferry builds."""

    user_managed_dependencies: bool = False
    interpreter_path: str = field(default_factory=lambda: sys.executable)
    conda_dependencies: CondaDependencies = field(default_factory=CondaDependencies)
    base_conda_environment: str | None = None


@dataclass
class DockerSection:
    """Recorded for targets that run containers; the local target refuses ``enabled=True``."""

    enabled: bool = False
    base_image: str | None = None
    base_dockerfile: str | None = None
    arguments: builtins.list[str] = field(default_factory=builtins.list)


@dataclass
class SparkPackage:
    """A Maven package for Spark jobs (``group:artifact:version``)."""

    group: str
    artifact: str
    version: str


@dataclass
class SparkSection:
    """Maven repositories and packages for Spark targets; recorded, not used locally."""

    repositories: builtins.list[str] = field(default_factory=builtins.list)
    packages: builtins.list[SparkPackage] = field(default_factory=builtins.list)
    precache_packages: bool = True


def _check_keys(data: Mapping[str, Any], allowed: set[str], where: str, section: str = "") -> None:
    unknown = set(data) - allowed - _REFERENCE_ONLY.get(section, set())
    if unknown:
        raise ConfigError(
            f"unknown key {sorted(unknown)[0]!r} in {where}; allowed keys: {', '.join(sorted(allowed))}"
        )


class Environment:
    """A named, versioned software environment for runs.

    Example::

        env = Environment("sk")
        env.python.conda_dependencies = CondaDependencies.create(pip_packages=["six==1.17.0"])
        env.register(ws)
    """

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

    # constructors from files ----------------------------------------------------------------
    @classmethod
    def from_pip_requirements(
        cls, name: str, file_path: str | os.PathLike[str], pip_version: str | None = None
    ) -> Environment:
        """An environment built from a requirements file (``-r`` includes and index options)."""
        packages, options = read_requirements(file_path)
        env = cls(name)
        env.python.conda_dependencies = CondaDependencies(
            pip_packages=packages, pip_options=options
        )
        return env

    @classmethod
    def from_conda_specification(cls, name: str, file_path: str | os.PathLike[str]) -> Environment:
        """An environment from a conda file: its Python version, packages, ``pip:`` and ``variables``.

        Without a Python version the environment uses the Python running ferry.
        """
        deps, variables = read_conda_file(file_path)
        env = cls(name)
        env.python.conda_dependencies = deps
        env.environment_variables.update(variables)
        return env

    @classmethod
    def from_cli_spec(cls, workspace: Any, text: str) -> Environment:
        """``NAME[:VERSION]`` (registered or curated), a requirements file or a conda file."""
        text = text.strip()
        path = Path(text).expanduser()
        suffix = path.suffix.lower()
        if path.is_file() or suffix in (".txt", ".in", ".yml", ".yaml") or os.sep in text:
            if not path.is_file():
                raise ConfigError(f"environment file {text!r} does not exist")
            if suffix in (".yml", ".yaml"):
                return cls.from_conda_specification(path.stem, path)
            return cls.from_pip_requirements(path.stem, path)
        name, sep, version = text.partition(":")
        if sep and not version.isdigit():
            raise ConfigError(f"environment {text!r}: the version after ':' must be a number")
        return cls.get(workspace, name, int(version) if version else None)

    # folders ----------------------------------------------------------------------------------
    def save_to_directory(self, path: str | os.PathLike[str], overwrite: bool = False) -> None:
        """Write ``azureml_environment.json`` and ``conda_dependencies.yml`` into ``path``."""
        folder = Path(path).expanduser()
        targets = [folder / ENV_FILE, folder / CONDA_FILE]
        existing = [t.name for t in targets if t.exists()]
        if existing and not overwrite:
            raise ConfigError(f"{folder} already holds {', '.join(existing)}; pass overwrite=True")
        data = self.to_dict()
        data["python"].pop("condaDependencies")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ENV_FILE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        self.python.conda_dependencies.save_to_file(folder, CONDA_FILE)

    @staticmethod
    def load_from_directory(path: str | os.PathLike[str]) -> Environment:
        """Read a folder written by :meth:`save_to_directory` (or by the reference)."""
        folder = Path(path).expanduser()
        try:
            data = json.loads((folder / ENV_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{folder} has no {ENV_FILE}") from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {folder / ENV_FILE}: {exc}") from exc
        env = Environment.from_dict(data, where=str(folder / ENV_FILE))
        if (folder / CONDA_FILE).is_file():
            deps, variables = read_conda_file(folder / CONDA_FILE)
            env.python.conda_dependencies = deps
            env.environment_variables = {**variables, **env.environment_variables}
        return env

    # registry ---------------------------------------------------------------------------------
    def register(self, workspace: Any) -> Environment:
        """Store this spec as the next version of its name (unchanged spec: same version)."""
        if self.name.startswith(CURATED_PREFIX):
            raise ConfigError(
                f"names starting with {CURATED_PREFIX!r} are kept for ferry's curated "
                f"environments; register a clone instead: env.clone('my-{self.name[6:]}')"
            )
        spec = self.to_dict()
        spec["version"] = None
        if self.name in workspace.store.list_environments():
            latest, stored = workspace.store.get_environment(self.name)
            if {**stored, "version": None} == spec:
                self.version = latest
                return self
        self.version = workspace.store.register_environment(self.name, spec)
        return self

    @staticmethod
    def get(
        workspace: Any, name: str, version: int | str | None = None, label: str | None = None
    ) -> Environment:
        """A registered (latest unless ``version``) or curated environment."""
        if label is not None:
            raise ConfigError("ferry has no environment labels; ask for a version instead")
        wanted = int(version) if version is not None else None
        curated = curated_spec(name)
        if curated is not None:
            if wanted not in (None, CURATED_VERSION):
                raise ConfigError(
                    f"curated environment {name!r} has only version {CURATED_VERSION}"
                )
            return Environment.from_dict(curated, where=f"curated environment {name!r}")
        registered = workspace.store.list_environments()
        if name not in registered:
            known = ", ".join([*sorted(registered), *CURATED]) or "none"
            raise ConfigError(f"no environment {name!r} is registered; known environments: {known}")
        found, spec = workspace.store.get_environment(name, wanted)
        env = Environment.from_dict(spec, where=f"environment {name!r} version {found}")
        env.version = found
        return env

    # building ---------------------------------------------------------------------------------
    def spec_hash(self) -> str | None:
        """The hash that identifies the built environment; None when user-managed."""
        from ferry.envbuild import environment_hash

        return environment_hash(self)

    def build_local(
        self, workspace: Any, log: Callable[[str], None] | None = None
    ) -> ResolvedEnvironment:
        """Build (or reuse) this environment in the workspace now, as a run would."""
        from ferry.envbuild import resolve

        return resolve(self, workspace.envs_dir, log)

    def clone(self, new_name: str) -> Environment:
        clone = Environment.from_dict(self.to_dict())
        clone.name = new_name
        clone.version = None
        return clone

    # plain dicts ------------------------------------------------------------------------------
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
                "arguments": builtins.list(self.docker.arguments),
            },
            "spark": {
                "repositories": builtins.list(self.spark.repositories),
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
        _check_keys(
            data, {"name", "version", "environmentVariables", "python", "docker", "spark"}, where
        )
        env = cls(str(data.get("name") or "default-environment"))
        env.version = data.get("version")
        variables = data.get("environmentVariables") or {}
        if not isinstance(variables, Mapping):
            raise ConfigError(f"{where}.environmentVariables must be a mapping")
        env.environment_variables = {str(k): str(v) for k, v in variables.items()}
        py = dict(data.get("python") or {})
        py_keys = {"userManagedDependencies", "interpreterPath", "condaDependencies",
                   "baseCondaEnvironment"}  # fmt: skip
        _check_keys(py, py_keys, f"{where}.python", "python")
        env.python.user_managed_dependencies = bool(py.get("userManagedDependencies", False))
        if py.get("interpreterPath"):
            env.python.interpreter_path = str(py["interpreterPath"])
        deps = py.get("condaDependencies")
        if isinstance(deps, Mapping) and "dependencies" in deps:  # the reference's conda form
            env.python.conda_dependencies = parse_conda_yaml(
                json.dumps(dict(deps)), f"{where}.python.condaDependencies"
            )[0]
        else:
            env.python.conda_dependencies = CondaDependencies.from_dict(
                deps, f"{where}.python.condaDependencies"
            )
        env.python.base_conda_environment = py.get("baseCondaEnvironment")
        docker = dict(data.get("docker") or {})
        _check_keys(docker, {"enabled", "baseImage", "baseDockerfile", "arguments"},
                    f"{where}.docker", "docker")  # fmt: skip
        env.docker = DockerSection(
            enabled=bool(docker.get("enabled", False)),
            base_image=docker.get("baseImage"),
            base_dockerfile=docker.get("baseDockerfile"),
            arguments=builtins.list(docker.get("arguments") or []),
        )
        spark = dict(data.get("spark") or {})
        _check_keys(spark, {"repositories", "packages", "precachePackages"}, f"{where}.spark")
        packages = []
        for p in spark.get("packages") or []:
            if not isinstance(p, Mapping) or set(p) != {"group", "artifact", "version"}:
                raise ConfigError(f"{where}.spark.packages: each needs group, artifact and version")
            packages.append(SparkPackage(str(p["group"]), str(p["artifact"]), str(p["version"])))
        env.spark = SparkSection(
            repositories=builtins.list(spark.get("repositories") or []),
            packages=packages,
            precache_packages=bool(spark.get("precachePackages", True)),
        )
        return env

    def __repr__(self) -> str:
        return f"Environment(name={self.name!r}, version={self.version!r})"

    @staticmethod
    def list(workspace: Any) -> dict[str, Environment]:
        """The latest version of every registered environment, and the curated ones."""
        out = {name: Environment.get(workspace, name) for name in CURATED}
        for name in workspace.store.list_environments():
            out[name] = Environment.get(workspace, name)
        return out
