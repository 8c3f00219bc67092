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
import logging
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
    "ContainerRegistry",
    "DockerBuildContext",
    "DockerSection",
    "Environment",
    "PythonSection",
    "SparkPackage",
    "SparkSection",
]

log = logging.getLogger("ferry")

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
class ContainerRegistry:
    """Where a base image is pulled from (the password is not recorded: log in with
    ``docker login ADDRESS`` and ferry pulls with Docker's stored credentials)."""

    address: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass
class DockerBuildContext:
    """A folder with a Dockerfile and the files it copies (``from_docker_build_context``)."""

    location: str
    dockerfile_path: str = "Dockerfile"
    location_type: str = "local"
    #: the digest of the files when the environment was made from it (part of its hash)
    digest: str = ""

    @classmethod
    def from_local_directory(
        cls, workspace: Any = None, path: str | os.PathLike[str] = ".",
        dockerfile_path: str = "Dockerfile",
    ) -> DockerBuildContext:  # fmt: skip
        """The folder ``path`` as a build context (``workspace`` is the reference's, unused:
        the files stay where they are and are digested now)."""
        from ferry.envbuild.docker_context import check_context, context_digest

        root = check_context(path, dockerfile_path)
        return cls(str(root), dockerfile_path, "local", context_digest(root, dockerfile_path))


#: the run-time settings the reference moved to DockerConfiguration (setting them warns)
_MOVED = ("enabled", "shm_size", "arguments", "shared_volumes")


class DockerSection:
    """The image an environment runs in, on targets that run containers (local, ssh).

    ``base_image``, ``base_dockerfile`` (a Dockerfile's text) and ``build_context`` are
    exclusive; none of them means ferry's default base image. ``enabled``, ``shm_size``,
    ``arguments`` and ``shared_volumes`` are deprecated here, as in the reference: set them on
    ``DockerConfiguration`` (``ScriptRunConfig(docker_runtime_config=...)``), whose settings win.
    """

    def __init__(self, **values: Any) -> None:
        self.base_image: str | None = None
        self.base_dockerfile: str | None = None
        self.build_context: DockerBuildContext | None = None
        self.base_image_registry = ContainerRegistry()
        self.platform: dict[str, str] = {"os": "Linux", "architecture": "amd64"}
        self.gpu_support = False  # deprecated no-op, as in the reference
        self._enabled = False
        self._shm_size = "2g"
        self._arguments: builtins.list[str] = []
        self._shared_volumes = True
        for key, value in values.items():
            if key in _MOVED:
                setattr(self, f"_{key}", value)
            elif hasattr(self, key):
                setattr(self, key, value)
            else:
                raise ConfigError(f"unknown DockerSection field {key!r}")

    def _moved(self, name: str, value: Any) -> None:
        log.warning(
            "'%s' is deprecated. Please use the DockerConfiguration object with the '%s' "
            "param instead (ScriptRunConfig(docker_runtime_config=DockerConfiguration(...)))",
            name, "use_docker" if name == "enabled" else name,
        )  # fmt: skip
        setattr(self, f"_{name}", value)

    @property
    def enabled(self) -> bool:
        return self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self._moved("enabled", bool(value))

    @property
    def shm_size(self) -> str:
        return self._shm_size

    @shm_size.setter
    def shm_size(self, value: str) -> None:
        self._moved("shm_size", value)

    @property
    def arguments(self) -> builtins.list[str]:
        return self._arguments

    @arguments.setter
    def arguments(self, value: builtins.list[str]) -> None:
        self._moved("arguments", builtins.list(value))

    @property
    def shared_volumes(self) -> bool:
        return self._shared_volumes

    @shared_volumes.setter
    def shared_volumes(self, value: bool) -> None:
        self._moved("shared_volumes", bool(value))

    def to_dict(self) -> dict[str, Any]:
        context = self.build_context
        registry = self.base_image_registry
        return {
            "enabled": self.enabled,
            "baseImage": self.base_image,
            "baseDockerfile": self.base_dockerfile,
            "buildContext": None
            if context is None
            else {
                "location": context.location,
                "dockerfilePath": context.dockerfile_path,
                "locationType": context.location_type,
                "digest": context.digest,
            },
            "baseImageRegistry": {"address": registry.address, "username": registry.username},
            "platform": dict(self.platform),
            "sharedVolumes": self.shared_volumes,
            "shmSize": self.shm_size,
            "arguments": builtins.list(self.arguments),
        }

    def __repr__(self) -> str:
        return f"DockerSection({self.to_dict()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DockerSection) and other.to_dict() == self.to_dict()


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

    # constructors for containers ------------------------------------------------------------
    @classmethod
    def from_docker_image(
        cls,
        name: str,
        image: str,
        container_registry: ContainerRegistry | None = None,
        conda_specification: str | os.PathLike[str] | None = None,
        pip_requirements: str | os.PathLike[str] | None = None,
    ) -> Environment:
        """An environment running in ``image``; the packages of a conda file or a requirements
        file are installed into the image (with uv). Without either, the image's own Python
        runs the job (user-managed, as the reference)."""
        env = cls._with_packages(name, conda_specification, pip_requirements)
        if not isinstance(image, str) or not image.strip():
            raise ConfigError("from_docker_image needs an image name, like 'python:3.11-slim'")
        env.docker._enabled = True
        env.docker.base_image = image.strip()
        if container_registry is not None:
            env.docker.base_image_registry = container_registry
        return env

    @classmethod
    def from_dockerfile(
        cls,
        name: str,
        dockerfile: str | os.PathLike[str],
        conda_specification: str | os.PathLike[str] | None = None,
        pip_requirements: str | os.PathLike[str] | None = None,
    ) -> Environment:
        """An environment whose base image is built from ``dockerfile`` (a file's path or a
        Dockerfile's text, which may use no ``COPY``/``ADD`` of local files: use a build context
        for those); packages as :meth:`from_docker_image`."""
        text = str(dockerfile)
        path = Path(text).expanduser()
        if "\n" not in text and path.is_file():
            text = path.read_text(encoding="utf-8")
        elif "\n" not in text and not text.lstrip().upper().startswith("FROM"):
            raise ConfigError(
                f"dockerfile {str(dockerfile)!r} is neither an existing file nor a Dockerfile's "
                "text (which starts with FROM)"
            )
        env = cls._with_packages(name, conda_specification, pip_requirements)
        env.docker._enabled = True
        env.docker.base_dockerfile = text
        return env

    @classmethod
    def from_docker_build_context(
        cls, name: str, docker_build_context: DockerBuildContext | str | os.PathLike[str]
    ) -> Environment:
        """An environment whose image is built from a folder with a Dockerfile; the image
        provides Python and the packages (user-managed). The folder's files are digested now:
        the environment is that content, and a build refuses a folder that changed since."""
        context = docker_build_context
        if not isinstance(context, DockerBuildContext):
            context = DockerBuildContext.from_local_directory(path=context)
        elif not context.digest:
            context = DockerBuildContext.from_local_directory(
                path=context.location, dockerfile_path=context.dockerfile_path
            )
        env = cls(name)
        env.python.user_managed_dependencies = True
        env.docker._enabled = True
        env.docker.build_context = context
        return env

    @classmethod
    def _with_packages(
        cls,
        name: str,
        conda_specification: str | os.PathLike[str] | None,
        pip_requirements: str | os.PathLike[str] | None,
    ) -> Environment:
        if conda_specification is not None and pip_requirements is not None:
            raise ConfigError("give conda_specification or pip_requirements, not both")
        if conda_specification is not None:
            return cls.from_conda_specification(name, conda_specification)
        if pip_requirements is not None:
            return cls.from_pip_requirements(name, pip_requirements)
        env = cls(name)
        env.python.user_managed_dependencies = True  # the image's own Python and packages
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

        The reference's ``platform`` and keywords (``useDocker``, ``pushImageToWorkspaceAcr``)
        are accepted; ``useDocker=True`` (or ``docker.enabled``) builds the environment's image
        on the Docker engine found as Docker's clients find it (``DOCKER_HOST``, else the
        default socket).
        """
        from ferry.envbuild import resolve

        unknown = set(kwargs) - {"useDocker", "pushImageToWorkspaceAcr"}
        if unknown:
            raise ConfigError(f"unknown build_local arguments: {', '.join(sorted(unknown))}")
        if kwargs.get("useDocker") or self.docker.enabled:
            from ferry.envbuild.docker_build import build_image

            return build_image(self.to_spec(), workspace, log).resolved()
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
            "docker": self.docker.to_dict(),
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
        docker, context = spec.docker, spec.docker.build_context
        os_name, _, arch = docker.platform.partition("/")
        env.docker = DockerSection(
            enabled=docker.enabled or docker.by_habit,
            base_image=docker.base_image,
            base_dockerfile=docker.base_dockerfile,
            build_context=None
            if context is None
            else DockerBuildContext(context.location, context.dockerfile, "local", context.digest),
            base_image_registry=ContainerRegistry(docker.registry, docker.registry_user),
            platform={"os": os_name.capitalize(), "architecture": arch},
            shm_size=docker.shm_size,
            arguments=builtins.list(docker.arguments),
            shared_volumes=docker.shared_volumes,
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
