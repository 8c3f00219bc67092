"""CondaDependencies: the packages of a built environment, read from and written as conda YAML.

ferry builds environments with uv, without conda. The Python version and the ``pip:`` section of a
conda file are honoured as they are; conda packages are installed from the package index under
their pip names when no conda/micromamba executable is around, and packages that exist only on
conda channels (compilers, CUDA toolkits, R, ...) are refused with a message that names them.

Example::

    deps = CondaDependencies.create(pip_packages=["scikit-learn==1.6.1"], python_version="3.11")
    deps.add_pip_package("joblib")
    print(deps.serialize_to_string())
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferry.envbuild.requirements import canonical_name, parse_requirements, requirement_name
from ferry.errors import ConfigError

CONDA_FILE_KEYS = ("name", "channels", "dependencies", "prefix", "variables")
DEFAULT_NAME = "project_environment"

#: conda names whose pip project has another name.
PIP_NAMES = {
    "pytorch": "torch",
    "py-xgboost": "xgboost",
    "py-opencv": "opencv-python",
    "pytables": "tables",
    "matplotlib-base": "matplotlib",
    "msgpack-python": "msgpack",
    "python-graphviz": "graphviz",
    "pyqt": "pyqt5",
}
#: conda packages with nothing to install in a uv-built environment (meta and build helpers).
IGNORED = {"pip", "setuptools", "wheel", "cpuonly", "nomkl"}
#: packages that exist only on conda channels (system libraries, toolchains, R, CUDA).
CONDA_ONLY = {
    "cudatoolkit", "cudnn", "cuda-toolkit", "cuda-nvcc", "nccl", "mkl", "mkl-service",
    "mkl-include", "blas", "libblas", "openblas", "libopenblas", "libgcc-ng", "libstdcxx-ng",
    "libgomp", "_libgcc_mutex", "_openmp_mutex", "ld_impl_linux-64", "gcc", "gxx", "gfortran",
    "openjdk", "nodejs", "ffmpeg", "openmpi", "mpich", "openssl", "libffi", "zlib", "sqlite",
    "tk", "xz", "readline", "ncurses", "bzip2", "libuuid", "ca-certificates", "r-base", "git",
}  # fmt: skip

_CONDA_SPEC = re.compile(r"^([A-Za-z0-9_.+-]+)\s*(.*)$")


@dataclass(init=False)
class CondaDependencies:
    """Packages of a built environment: Python version, pip and conda packages, channels.

    ``CondaDependencies("environment.yml")`` reads a conda file, as the reference does.
    """

    python_version: str | None = None
    pip_packages: list[str] = field(default_factory=list)
    conda_packages: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    pip_options: list[str] = field(default_factory=list)

    def __init__(
        self,
        conda_dependencies_file_path: str | os.PathLike[str] | None = None,
        *,
        python_version: str | None = None,
        pip_packages: list[str] | None = None,
        conda_packages: list[str] | None = None,
        channels: list[str] | None = None,
        pip_options: list[str] | None = None,
    ) -> None:
        self.python_version = python_version
        self.pip_packages = list(pip_packages or [])
        self.conda_packages = list(conda_packages or [])
        self.channels = list(channels or [])
        self.pip_options = list(pip_options or [])
        if conda_dependencies_file_path is not None:
            loaded, _ = read_conda_file(conda_dependencies_file_path)
            self.__dict__.update(loaded.__dict__)

    @classmethod
    def create(
        cls,
        pip_indexurl: str | None = None,
        pip_packages: list[str] | None = None,
        conda_packages: list[str] | None = None,
        python_version: str | None = None,
        pin_sdk_version: bool = True,
    ) -> CondaDependencies:
        """The reference's constructor; without ``python_version`` the run uses ferry's Python."""
        deps = cls(python_version=python_version, pip_options=[])
        if pip_indexurl:
            deps.pip_options.append(f"--index-url {pip_indexurl}")
        for package in pip_packages or []:
            deps.add_pip_package(package)
        for package in conda_packages or []:
            deps.add_conda_package(package)
        return deps

    # editing -----------------------------------------------------------------------------
    def add_pip_package(self, pip_package: str) -> None:
        """Add a pip requirement, replacing another requirement of the same project."""
        self.pip_packages = _replace(self.pip_packages, pip_package, requirement_name)

    def remove_pip_package(self, pip_package: str) -> None:
        name = requirement_name(pip_package) or pip_package
        self.pip_packages = [p for p in self.pip_packages if requirement_name(p) != name]

    def add_conda_package(self, conda_package: str) -> None:
        """Add a conda package (``python=3.11`` sets the Python version instead)."""
        if conda_name(conda_package) == "python":
            self.python_version = python_of(conda_package, "add_conda_package")
            return
        self.conda_packages = _replace(self.conda_packages, conda_package, conda_name)

    def remove_conda_package(self, conda_package: str) -> None:
        name = conda_name(conda_package)
        self.conda_packages = [p for p in self.conda_packages if conda_name(p) != name]

    def add_channel(self, channel: str) -> None:
        if channel not in self.channels:
            self.channels.append(channel)

    def set_pip_option(self, pip_option: str) -> None:
        if pip_option not in self.pip_options:
            self.pip_options.append(pip_option)

    def set_python_version(self, version: str) -> None:
        self.python_version = version

    # conda YAML --------------------------------------------------------------------------
    def serialize_to_string(self) -> str:
        """The conda environment file of these dependencies."""
        import yaml

        deps: list[Any] = [f"python={self.python_version}"] if self.python_version else []
        deps += self.conda_packages
        if self.pip_packages or self.pip_options:
            deps.append({"pip": [*self.pip_options, *self.pip_packages]})
        data: dict[str, Any] = {"name": DEFAULT_NAME}
        if self.channels:
            data["channels"] = list(self.channels)
        data["dependencies"] = deps
        header = "# Conda environment specification, written by ferry.\n"
        return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)

    def save_to_file(
        self, base_directory: str | os.PathLike[str], conda_file_path: str | None = None
    ) -> Path:
        """Write the conda file into ``base_directory`` and return its path."""
        target = Path(base_directory) / (conda_file_path or "conda_dependencies.yml")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.serialize_to_string(), encoding="utf-8")
        return target

    @classmethod
    def from_yaml(
        cls, text: str, source: str = "<conda file>", base_dir: Path | None = None
    ) -> CondaDependencies:
        return parse_conda_yaml(text, source, base_dir)[0]

    # plain dicts ---------------------------------------------------------------------------
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
        keys = {
            "pythonVersion": "python_version",
            "pipPackages": "pip_packages",
            "condaPackages": "conda_packages",
            "channels": "channels",
            "pipOptions": "pip_options",
        }
        kwargs: dict[str, Any] = {}
        for key, value in dict(data or {}).items():
            name = keys.get(key, key if key in keys.values() else None)
            if name is None:
                raise ConfigError(
                    f"unknown key {key!r} in {where}; allowed keys: {', '.join(keys)}"
                )
            if name != "python_version" and not (
                isinstance(value, list) and all(isinstance(v, str) for v in value)
            ):
                raise ConfigError(f"{where}.{key} must be a list of strings")
            kwargs[name] = value
        if kwargs.get("python_version") is not None:
            kwargs["python_version"] = str(kwargs["python_version"])
        return cls(**kwargs)


def conda_name(spec: str) -> str:
    text = spec.strip().split("::")[-1]
    match = _CONDA_SPEC.match(text)
    return canonical_name(match.group(1)) if match else text


def _replace(items: list[str], new: str, key: Any) -> list[str]:
    name = key(new)
    kept = [item for item in items if name is None or key(item) != name]
    return [*kept, new.strip()]


def python_of(spec: str, where: str) -> str | None:
    """The version in ``python=3.11`` / ``python==3.11.7`` / ``python 3.11``; None if absent."""
    match = _CONDA_SPEC.match(spec.strip().split("::")[-1])
    rest = match.group(2).strip() if match else ""
    if rest.startswith("=="):
        rest = rest[2:].strip()
    elif rest.startswith("="):
        rest = rest[1:].split("=")[0].strip()  # python=3.11=h12345_0: drop the build string
    if not rest:
        return None
    if not re.fullmatch(r"\d+(\.\d+){0,2}(\.\*)?", rest):
        raise ConfigError(
            f"{where}: {spec.strip()!r}: name one Python version (e.g. python=3.11); "
            "ranges are not supported"
        )
    return rest.removesuffix(".*")


def conda_to_pip(spec: str) -> str | None:
    """The pip requirement for a conda package spec; None when there is nothing to install."""
    match = _CONDA_SPEC.match(spec.strip().split("::")[-1])
    if match is None:
        raise ConfigError(f"{spec!r} is not a conda package specification")
    name = canonical_name(match.group(1))
    if name in IGNORED:
        return None
    pip_name = PIP_NAMES.get(name, name)
    version = match.group(2).strip()
    if not version:
        return pip_name
    if "|" in version:
        raise ConfigError(
            f"conda package {spec!r}: alternatives ('|') cannot be installed with pip"
        )
    if version.startswith("==") or version[0] in "<>!~":
        return pip_name + version.split(" ")[0]
    exact = version.lstrip("=").split("=")[0].strip()  # drop a build string
    return f"{pip_name}=={exact.removesuffix('.*')}.*"


def conda_only(conda_packages: list[str]) -> list[str]:
    """The packages among ``conda_packages`` that exist only on conda channels."""
    return [
        p for p in conda_packages if conda_name(p) in CONDA_ONLY or conda_name(p).startswith("r-")
    ]


MICROMAMBA_HINT = (
    "install micromamba (a single executable: see "
    "https://mamba.readthedocs.io/en/latest/installation/micromamba-installation.html, e.g. "
    '`"${SHELL}" <(curl -L micro.mamba.pm/install.sh)`), or point $FERRY_CONDA_EXE at a conda, '
    "mamba or micromamba executable"
)


def export_environment(conda_environment_name: str) -> tuple[CondaDependencies, dict[str, str]]:
    """The packages of an existing conda environment, as ``conda env export --no-builds`` gives
    them (build strings dropped with mamba/micromamba too). Needs a conda-compatible executable."""
    import subprocess

    exe = find_conda()
    if exe is None:
        raise ConfigError(
            f"reading the conda environment {conda_environment_name!r} needs conda or micromamba, "
            "and neither was found ($FERRY_CONDA_EXE, $MAMBA_EXE, $CONDA_EXE, PATH): "
            f"{MICROMAMBA_HINT}; or build the environment from its conda file with "
            "Environment.from_conda_specification(name, 'environment.yml')"
        )
    argv = [exe, "env", "export", "--name", conda_environment_name]
    if Path(exe).name.startswith("conda"):
        argv.append("--no-builds")
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"cannot run {exe!r} to read a conda environment: {exc}") from exc
    if out.returncode != 0:
        raise ConfigError(
            f"{Path(exe).name} could not export the conda environment "
            f"{conda_environment_name!r} (exit {out.returncode}): "
            f"{(out.stderr or out.stdout).strip()[-500:]}; `{Path(exe).name} env list` shows "
            "the environments it knows"
        )
    deps, variables = parse_conda_yaml(out.stdout, f"{Path(exe).name} env export")
    # numpy=1.26.4=py311h64a7726_0 → numpy=1.26.4 (mamba and micromamba keep build strings)
    deps.conda_packages = [re.sub(r"^([^=]+=[^=]+)=.*$", r"\1", p) for p in deps.conda_packages]
    return deps, variables


def find_conda() -> str | None:
    """A conda-compatible executable: $FERRY_CONDA_EXE, $MAMBA_EXE, $CONDA_EXE or on PATH."""
    for variable in ("FERRY_CONDA_EXE", "MAMBA_EXE", "CONDA_EXE"):
        value = os.environ.get(variable)
        if value and Path(value).is_file():
            return value
    for name in ("micromamba", "mamba", "conda"):
        found = shutil.which(name)
        if found:
            return found
    return None


def parse_conda_yaml(
    text: str, source: str, base_dir: Path | None = None
) -> tuple[CondaDependencies, dict[str, str]]:
    """Parse a conda environment file into dependencies and its ``variables``."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}: malformed YAML{at}: {problem}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a conda file must be a mapping with 'dependencies'")
    unknown = sorted(set(map(str, data)) - set(CONDA_FILE_KEYS))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key {unknown[0]!r}; allowed keys: {', '.join(CONDA_FILE_KEYS)}"
        )
    deps = CondaDependencies()
    channels = data.get("channels") or []
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise ConfigError(f"{source}: 'channels' must be a list of names")
    deps.channels = list(channels)
    entries = data.get("dependencies") or []
    if not isinstance(entries, list):
        raise ConfigError(f"{source}: 'dependencies' must be a list")
    for entry in entries:
        if isinstance(entry, dict):
            if set(entry) != {"pip"} or not isinstance(entry["pip"], list):
                raise ConfigError(
                    f"{source}: a mapping in 'dependencies' must be 'pip:' with a list, got {entry!r}"
                )
            include = None if base_dir is None else _includer(base_dir)
            lines = "\n".join(str(item) for item in entry["pip"])
            packages, options = parse_requirements(lines, f"{source} (pip section)", include)
            deps.pip_packages += packages
            deps.pip_options += options
        elif isinstance(entry, str | int | float):
            spec = str(entry).strip()
            if conda_name(spec) == "python":
                deps.python_version = python_of(spec, source)
            else:
                deps.conda_packages.append(spec)
        else:
            raise ConfigError(f"{source}: unexpected dependency {entry!r}")
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        raise ConfigError(f"{source}: 'variables' must be a mapping of names to values")
    return deps, {str(k): str(v) for k, v in variables.items()}


def _includer(base_dir: Path) -> Any:
    def include(name: str, where: str) -> tuple[str, str]:
        target = (base_dir / name).expanduser()
        try:
            return target.read_text(encoding="utf-8"), str(target)
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read {str(target)!r}: {exc.strerror}") from exc

    return include


def read_conda_file(path: str | os.PathLike[str]) -> tuple[CondaDependencies, dict[str, str]]:
    """Read a conda environment file (``environment.yml``)."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"conda file {str(file)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read conda file {str(file)!r}: {exc}") from exc
    return parse_conda_yaml(text, str(file), file.parent)
