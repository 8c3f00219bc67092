"""Environment: the software a run needs, with the reference's sections, registry and files.

As in the reference, an environment is *not* user-managed by default: ferry builds it from
``python.conda_dependencies`` with uv, once per specification hash, and reuses it (see
:mod:`ferry.envbuild`). One that declares nothing beyond the reference's defaults (no packages, no
Python version — ``RunConfiguration()``'s default environment) builds nothing and runs with the
target's own interpreter; so does a user-managed one (``user_managed_dependencies = True``, with
``interpreter_path``). The reference's curated names (``AzureML-Minimal``, the sklearn, PyTorch and
TensorFlow families) are ready without registration (:mod:`ferry.envbuild.curated`). Specs
serialize to plain dicts (camelCase, as the reference).

Example::

    env = Environment.from_pip_requirements("sk", "requirements.txt")
    env.environment_variables["OMP_NUM_THREADS"] = "1"
    env.register(ws)                                  # version 1, 2, ... as the spec changes
    Environment.get(ws, "sk").version                 # the latest
    Environment.get(ws, "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu")   # curated
"""

from __future__ import annotations

import builtins
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry.envbuild.conda import CondaDependencies, export_environment, read_conda_file
from ferry.envbuild.curated import CURATED, CURATED_VERSION, curated_spec, is_reserved
from ferry.envbuild.requirements import read_requirements
from ferry.errors import ConfigError
from ferry.jobdef import DEFAULT_INTERPRETER, conda_dependencies, environment_spec
from ferry.spec import EnvironmentSpec

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


@dataclass
class PythonSection:
    """How Python is provided: a user-managed interpreter or an environment ferry builds."""

    user_managed_dependencies: bool = False
    #: "python" (the reference's default) means the target's own interpreter: the one running
    #: ferry on this machine, the host's python3 over SSH, the node's Python on Ray
    interpreter_path: str = DEFAULT_INTERPRETER
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
        if pip_version is not None:  # the reference pins pip in the environment: so does ferry
            env.python.conda_dependencies.add_pip_package(f"pip=={str(pip_version).strip()}")
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
    def from_existing_conda_environment(cls, name: str, conda_environment_name: str) -> Environment:
        """An environment with the packages of an existing conda environment (as the reference,
        ``conda env export --no-builds``); needs conda or micromamba on this machine."""
        deps, variables = export_environment(conda_environment_name)
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
        if is_reserved(self.name):
            raise ConfigError(
                f"the name {self.name!r} is kept for curated environments (names starting with "
                "'ferry-', 'AzureML-' or 'Microsoft'); register a clone under a name of your "
                f"own instead: env.clone('my-{self.name.split('-', 1)[-1]}')"
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
        try:
            wanted = int(version) if version is not None else None
        except (TypeError, ValueError):
            raise ConfigError(
                f"environment version {version!r} must be a whole number (or None for the latest)"
            ) from None
        curated = curated_spec(name)
        if curated is not None:
            if wanted not in (None, CURATED_VERSION):
                raise ConfigError(
                    f"curated environment {name!r} has only version {CURATED_VERSION}"
                )
            return Environment.from_dict(curated, where=f"curated environment {name!r}")
        registered = workspace.store.list_environments()
        if name not in registered:
            import difflib

            close = difflib.get_close_matches(name, [*registered, *CURATED], n=3, cutoff=0.6)
            hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise ConfigError(
                f"no environment {name!r} is registered. Registered: "
                f"{', '.join(sorted(registered)) or 'none'}; curated: {len(CURATED)} names, "
                f"listed by Environment.list(ws) and `ferry env list`.{hint}"
            )
        found, spec = workspace.store.get_environment(name, wanted)
        env = Environment.from_dict(spec, where=f"environment {name!r} version {found}")
        env.version = found
        return env

    # building ---------------------------------------------------------------------------------
    def spec_hash(self) -> str | None:
        """The hash that identifies the built environment; None when nothing is built for it
        (user-managed, or declaring nothing beyond the defaults: the target's interpreter)."""
        from ferry.envbuild import environment_hash

        return environment_hash(self.to_spec())

    def build_local(
        self,
        workspace: Any,
        platform: str | None = None,
        log: Callable[[str], None] | None = None,
        **kwargs: Any,
    ) -> ResolvedEnvironment:
        """Build (or reuse) this environment in the workspace now, as a run would.

        The reference's ``platform`` and keywords (``useDocker=False``, ``pushImageToWorkspaceAcr``)
        are accepted; asking for Docker here is refused with the reason.
        """
        from ferry.envbuild import resolve

        if kwargs.get("useDocker"):
            raise ConfigError(
                "build_local(useDocker=True): this environment is built with uv on this "
                "machine, not in a Docker image; call build_local(ws) without useDocker"
            )
        unknown = set(kwargs) - {"useDocker", "pushImageToWorkspaceAcr"}
        if unknown:
            raise ConfigError(f"unknown build_local arguments: {', '.join(sorted(unknown))}")
        return resolve(self.to_spec(), workspace.envs_dir, log)

    def get_image_details(self, workspace: Any) -> dict[str, Any]:
        """What this environment is on this machine, without building it: its hash, folder,
        Python and locked packages once built — or the interpreter a run gets when there is
        nothing to build. (The reference describes a Docker image; ferry's are folders.)"""
        from ferry.envbuild.resolver import describe

        return describe(self.to_spec(), workspace.envs_dir)

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
        """An environment from the reference's dict shape (checked by :mod:`ferry.jobdef`)."""
        return cls.from_spec(environment_spec(data, where))

    @classmethod
    def from_spec(cls, spec: EnvironmentSpec) -> Environment:
        env = cls(spec.name)
        env.version = spec.version
        env.environment_variables = dict(spec.variables)
        env.python.user_managed_dependencies = spec.user_managed
        env.python.interpreter_path = spec.interpreter or DEFAULT_INTERPRETER
        env.python.conda_dependencies = conda_dependencies(spec)
        env.python.base_conda_environment = spec.base_conda_environment
        env.docker = DockerSection(
            enabled=spec.docker.enabled,
            base_image=spec.docker.base_image,
            base_dockerfile=spec.docker.base_dockerfile,
            arguments=builtins.list(spec.docker.arguments),
        )
        env.spark = SparkSection(
            repositories=builtins.list(spec.spark_repositories),
            packages=[SparkPackage(*p.split(":")) for p in spec.spark_packages],
            precache_packages=spec.spark_precache,
        )
        return env

    def to_spec(self) -> EnvironmentSpec:
        """What the machinery needs of this environment (plain, frozen data)."""
        return environment_spec(self.to_dict(), f"environment {self.name!r}")

    def __repr__(self) -> str:
        return f"Environment(name={self.name!r}, version={self.version!r})"

    @staticmethod
    def list(workspace: Any) -> dict[str, Environment]:
        """The latest version of every registered environment, and the curated ones."""
        out = {name: Environment.get(workspace, name) for name in CURATED}
        for name in workspace.store.list_environments():
            out[name] = Environment.get(workspace, name)
        return out
