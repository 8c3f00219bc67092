"""Checks of an estimator's arguments, one rule each, with the reference's messages.

Every check raises :class:`~ferry.errors.ConfigError` naming the estimator class and the
argument, and says what to give instead; nothing is accepted and silently ignored.

Example::

    script_params_to_arguments("Estimator", {"--lr": 0.1, "--flag": None, "--list": [1, 2]})
    # ['--lr', 0.1, '--flag', '--list', 1, 2]
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ferry.errors import ConfigError

if TYPE_CHECKING:
    from ferry.estimator.generic import EstimatorArguments

log = logging.getLogger("ferry")

_PLAIN = (str, int, float, bool)
#: the arguments that go with environment_definition in the reference: none of them
_WITH_DEFINITION = (
    "pip_packages", "pip_requirements_file", "conda_packages", "conda_dependencies_file",
    "custom_docker_image", "image_registry_details", "use_gpu", "user_managed", "shm_size",
    "environment_variables",
)  # fmt: skip


def script_params_to_arguments(owner: str, params: Mapping[Any, Any]) -> list[Any]:
    """The reference's flattening: ``k, v`` in order, list values spread in place, then every
    None and ``""`` dropped (so ``{'--flag': None}`` is a bare switch); numbers stay numbers."""
    flat: list[Any] = []
    for key, value in params.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{owner}: script_params keys must be non-empty strings, got {key!r}")
        flat.append(key)
        items = list(value) if isinstance(value, list | tuple) else [value]
        for item in items:
            if item is None or isinstance(item, _PLAIN):
                flat.append(item)
            elif isinstance(item, os.PathLike):
                flat.append(os.fspath(item))
            elif type(item).__module__.startswith("ferry.data."):
                flat.append(item)  # a dataset or data reference: bound when the run is submitted
            else:
                raise ConfigError(
                    f"{owner}: script_params[{key!r}] is a {type(item).__name__}; give a str, "
                    "number, bool, path, a list of those, or None for a bare switch"
                )
    return [
        item for item in flat if item is not None and not (isinstance(item, str) and item == "")
    ]


def check_bool(owner: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{owner}: {name} must be True or False, not {value!r}")
    return value


def check_strings(owner: str, name: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ConfigError(f"{owner}: {name} must be a list of strings like ['numpy==1.26.4']")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(f"{owner}: {name} must hold non-empty strings, got {item!r}")
    return tuple(item.strip() for item in value)


def check_target(owner: str, compute_target: Any, vm_size: Any, vm_priority: Any) -> Any:
    """The reference needs a compute target or a VM size; a VM size alone asked its service for
    a run-based cluster, which ferry does not create."""
    if vm_priority not in (None, "dedicated", "lowpriority"):
        raise ConfigError(
            f"{owner}: vm_priority must be 'dedicated' or 'lowpriority', not {vm_priority!r}"
        )
    if vm_size is not None and not isinstance(vm_size, str):
        raise ConfigError(f"{owner}: vm_size must be a VM size name (a string), not {vm_size!r}")
    if compute_target is None:
        if vm_size is None:
            raise ConfigError(
                f"{owner}: Either compute target or VM size should be specified. Give "
                "compute_target='local' or the name of an attached target (ferry target list)"
            )
        raise ConfigError(
            f"{owner}: vm_size={vm_size!r} alone asks for a run-based cluster, which ferry does "
            "not create; attach a target and give compute_target=<its name> (or 'local')"
        )
    name = getattr(compute_target, "name", compute_target)
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(
            f"{owner}: compute_target must be a target name like 'local' or a ComputeTarget, "
            f"not {compute_target!r}"
        )
    return compute_target


def check_variables(owner: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{owner}: environment_variables must be a dict of names to values, like "
            "{'OMP_NUM_THREADS': '1'}"
        )
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key or "=" in key:
            raise ConfigError(
                f"{owner}: environment_variables names must be non-empty strings without '=', "
                f"got {key!r}"
            )
        if isinstance(item, Mapping | list | tuple):
            raise ConfigError(f"{owner}: environment_variables[{key!r}] must be a plain value")
        out[key] = "" if item is None else str(item)
    return out


def check_duration(owner: str, value: Any) -> int | None:
    """None (no limit: the ScriptRunConfig's 30-day default does not apply, as the reference)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(
            f"{owner}: max_run_duration_seconds must be a positive whole number of seconds, "
            f"not {value!r}"
        )
    return value


def input_references(owner: str, inputs: Any) -> dict[str, Any]:
    """``inputs`` as the run's data references, by name: a datastore path's reference
    (``ds.path('mnist').as_mount()``) is mounted as the reference does; other entries are
    recorded and noted at submit."""
    if inputs is None:
        return {}
    if isinstance(inputs, str) or not isinstance(inputs, list | tuple):
        raise ConfigError(f"{owner}: inputs must be a list of data references")
    from ferry.data.references import DataReference

    out: dict[str, Any] = {}
    for index, item in enumerate(inputs):
        if item is None:
            raise ConfigError(f"{owner}: inputs[{index}] is None")
        name = getattr(item, "data_reference_name", None) or getattr(item, "name", None)
        key = str(name) if name else f"input_{index}"
        out[key] = item.to_config() if isinstance(item, DataReference) else str(item)
    return out


def resolve_aliases(owner: str, a: EstimatorArguments) -> tuple[str | None, str | None, str | None]:
    """The deprecated ``*_path`` and ``custom_docker_base_image`` spellings, as the reference:
    (image, conda file, pip requirements file)."""
    image = a.custom_docker_image
    if a.custom_docker_base_image is not None:
        if image is not None:
            raise ConfigError(
                f"{owner}: 'custom_docker_base_image' parameter will be deprecated. Please use "
                "'custom_docker_image' only."
            )
        log.warning(
            "'custom_docker_base_image' parameter will be deprecated. Please use "
            "'custom_docker_image' instead."
        )
        image = a.custom_docker_base_image
    files = []
    for new, old in (
        ("conda_dependencies_file", "conda_dependencies_file_path"),
        ("pip_requirements_file", "pip_requirements_file_path"),
    ):
        value, alias = getattr(a, new), getattr(a, old)
        if alias is not None and value is not None:
            log.warning(
                "Either '%s' or '%s' should be used. '%s' will take precedence since '%s' will be "
                "deprecated.", new, old, new, old,
            )  # fmt: skip
        elif alias is not None:
            log.warning("'%s' parameter will be deprecated. Please use '%s' instead", old, new)
            value = alias
        if value is not None and (not isinstance(value, str | os.PathLike) or not os.fspath(value)):
            raise ConfigError(f"{owner}: {new} must be a file name relative to source_directory")
        files.append(None if value is None else os.fspath(value))
    if image is not None and (not isinstance(image, str) or not image.strip()):
        raise ConfigError(f"{owner}: custom_docker_image must be an image name, not {image!r}")
    return image, files[0], files[1]


def environment_conflicts(
    owner: str,
    a: EstimatorArguments,
    *,
    image: str | None,
    conda_file: str | None,
    pip_file: str | None,
) -> None:
    """The reference's refusals: environment_definition with any environment argument, a conda
    file with package lists, user_managed with packages."""
    given = {
        "pip_packages": bool(a.pip_packages),
        "pip_requirements_file": pip_file is not None,
        "conda_packages": bool(a.conda_packages),
        "conda_dependencies_file": conda_file is not None,
        "custom_docker_image": image is not None,
        "image_registry_details": a.image_registry_details is not None,
        "use_gpu": bool(a.use_gpu),
        "user_managed": bool(a.user_managed),
        "shm_size": a.shm_size is not None,
        "environment_variables": bool(a.environment_variables),
    }
    if a.environment_definition is not None:
        from ferry.environment import Environment

        if not isinstance(a.environment_definition, Environment):
            raise ConfigError(
                f"{owner}: environment_definition must be an Environment, not "
                f"{type(a.environment_definition).__name__}"
            )
        clash = [name for name in _WITH_DEFINITION if given[name]]
        if clash:
            raise ConfigError(
                f"{owner}: If environment_definition parameter is specified, the following "
                f"parameters cannot be specified: {', '.join(_WITH_DEFINITION)} (given: "
                f"{', '.join(clash)}); put them on the Environment instead"
            )
    lists = [n for n in ("pip_packages", "pip_requirements_file", "conda_packages") if given[n]]
    if conda_file is not None and lists:
        raise ConfigError(
            f"{owner}: If conda_dependencies_file parameter is specified, the following "
            f"parameters cannot be specified: pip_packages, pip_requirements_file, "
            f"conda_packages (given: {', '.join(lists)}); list the packages in the conda file"
        )
    if a.user_managed is True and (lists or conda_file is not None):
        raise ConfigError(
            f"{owner}: If user_managed is True, then conda_packages, conda_dependencies_file, "
            "pip_packages or pip_requirements_file cannot be specified (a user-managed "
            "interpreter is used as it is)"
        )
