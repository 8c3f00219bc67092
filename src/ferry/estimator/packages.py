"""The environment an estimator asks for: its package arguments and its framework's defaults.

As the reference (``_create_conda_dependencies`` and ``_setup_environment``): the packages are
``azureml-defaults`` + the requirements file's lines + ``pip_packages`` + ``conda_packages``, or
the conda file alone; a framework estimator then adds its framework's packages, except those the
user named (the user's pins win, with the reference's warning) and except with a conda file, an
``environment_definition`` or ``user_managed=True``. ``azureml-defaults`` is left out of builds by
:mod:`ferry.envbuild.defaults`, so an estimator that asks for nothing else builds nothing.

The framework's packages are the curated environment of the same framework and version
(:mod:`ferry.envbuild.curated`): the reference's Python 3.6 becomes 3.8 and versions without
wheels for 3.8 the nearest that have them, said in a note. When the user pins the framework's
main package (``scikit-learn``, ``torch``, ``tensorflow``), the other pins, chosen for the old
version, would fight it: they are left to the resolver (names without versions), and the Python
version to the user.

Example::

    env, notes = estimator_environment(PackageRequest(pip_packages=("six==1.17.0",)), ".")
    env.python.conda_dependencies.pip_packages      # ['azureml-defaults', 'six==1.17.0']
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ferry.envbuild.conda import PIP_NAMES, CondaDependencies, conda_name, read_conda_file
from ferry.envbuild.curated import Curated
from ferry.envbuild.requirements import parse_requirements, read_requirements, requirement_name
from ferry.environment import Environment
from ferry.errors import ConfigError

log = logging.getLogger("ferry")

#: the pip project the reference's CondaDependencies() always carries
AZUREML_DEFAULTS = "azureml-defaults"
#: the name of an estimator's environment (the reference's RunConfiguration default)
ENVIRONMENT_NAME = "default-environment"


@dataclass(frozen=True)
class Framework:
    """One framework release an estimator installs: its curated row and main packages."""

    estimator: str  # "SKLearn"
    version: str  # "0.20.3"
    packages: Curated
    #: pip projects that *are* the framework (a user pin of one replaces the framework's)
    main: frozenset[str]


@dataclass(frozen=True)
class PackageRequest:
    """The estimator arguments that decide its environment (checked by the estimator)."""

    pip_packages: tuple[str, ...] = ()
    conda_packages: tuple[str, ...] = ()
    pip_requirements_file: str | None = None
    conda_dependencies_file: str | None = None
    user_managed: bool = False
    use_docker: bool = True
    custom_docker_image: str | None = None


def estimator_environment(
    request: PackageRequest, source_directory: str, framework: Framework | None = None
) -> tuple[Environment, list[str]]:
    """The estimator's environment and the notes to log (substitutions, overrides)."""
    env = Environment(ENVIRONMENT_NAME)
    env.python.user_managed_dependencies = request.user_managed
    env.docker.enabled = request.use_docker
    env.docker.base_image = request.custom_docker_image
    notes: list[str] = []
    if request.user_managed:  # nothing is installed: the packages were refused by the caller
        if framework is not None:
            notes.append(
                f"user_managed=True: the {framework.estimator} {framework.version} packages are "
                "not installed; the interpreter the job runs with must have them"
            )
        return env, notes
    if request.conda_dependencies_file is not None:
        path = _inside(source_directory, request.conda_dependencies_file, "conda_dependencies_file")
        deps, variables = read_conda_file(path)
        env.python.conda_dependencies = deps
        env.environment_variables.update(variables)
        return env, notes
    deps = CondaDependencies(pip_packages=[AZUREML_DEFAULTS])
    if request.pip_requirements_file is not None:
        path = _inside(source_directory, request.pip_requirements_file, "pip_requirements_file")
        packages, options = read_requirements(path)
        _add_pip(deps, packages, options)
    packages, options = parse_requirements("\n".join(request.pip_packages), "pip_packages")
    _add_pip(deps, packages, options)
    for package in request.conda_packages:
        deps.add_conda_package(package)
    if framework is not None:
        notes += _add_framework(deps, framework)
    env.python.conda_dependencies = deps
    return env, notes


def _add_pip(deps: CondaDependencies, packages: list[str], options: list[str]) -> None:
    for package in packages:
        deps.add_pip_package(package)
    for option in options:
        deps.set_pip_option(option)


def _inside(source_directory: str, name: str, argument: str) -> Path:
    """A file named relative to the source folder, as the reference reads it."""
    path = Path(source_directory).expanduser() / Path(name).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"{argument}: {str(path)!r} path doesn't exist. The file should be inside the "
            f"project folder (source_directory={source_directory!r}), named relative to it"
        )
    return path


def _user_names(deps: CondaDependencies) -> set[str]:
    """The pip projects the user named, through pip or conda (``pytorch`` is ``torch``)."""
    names = {requirement_name(p) for p in deps.pip_packages} - {None, AZUREML_DEFAULTS}
    for package in deps.conda_packages:
        name = conda_name(package)
        names.add(PIP_NAMES.get(name, name))
    return {n for n in names if n}


def _add_framework(deps: CondaDependencies, framework: Framework) -> list[str]:
    """Merge the framework's packages under the user's (the user's pins win)."""
    row, version = framework.packages, f"framework_version {framework.version}"
    named = _user_names(deps)
    own = [requirement_name(p) or p for p in row.pip]
    overridden = [n for n in own if n in named] + sorted((framework.main & named) - set(own))
    if overridden:
        log.warning(
            "You have specified to install packages in your run. Note that you have overridden "
            "the %s estimator's installation of the following packages: %s. We cannot guarantee "
            "the environment builds.",
            framework.estimator,
            overridden,
        )
    main_pinned = sorted(framework.main & named)
    if main_pinned:
        others = [n for n in own if n not in framework.main and n not in named]
        for name in others:
            deps.add_pip_package(name)
        python = deps.python_version or "the one running ferry"
        return [
            f"{version}: your {', '.join(main_pinned)} replaces the framework's, so the other "
            f"packages it pins ({', '.join(others) or 'none'}) are installed at versions that "
            f"fit yours, on your Python ({python})"
        ]
    for name, pin in zip(own, row.pip, strict=True):
        if name not in named:
            deps.add_pip_package(pin)
    if deps.python_version is None:
        deps.python_version = row.python
    if not row.why:
        return []
    why = row.why.replace(" (see the module docstring)", "")
    return [
        f"{version}: the reference installs {row.reference}; ferry's packages for it are "
        f"Python {row.python} with {', '.join(row.pip)} ({why})"
    ]
