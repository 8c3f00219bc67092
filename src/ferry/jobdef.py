"""The one validator of stored definitions: camelCase dicts in, :mod:`ferry.spec` types out.

A run's definition is stored in the reference's shape (``runDefinition``: camelCase, the
environment as the reference serializes it), because that is what ``get_details()`` shows and
what a later ferry must still read. The machinery never reads that dict: :func:`job_spec` turns
it into a :class:`~ferry.spec.JobSpec` once, at submit (to refuse what cannot run before anything
is written) and when the supervisor prepares the run; :func:`environment_spec` does the same for
an environment (``Environment.from_dict`` and ``Environment.to_spec`` go through it too).

Example::

    spec = environment_spec({"name": "sk", "python": {"userManagedDependencies": False,
                             "condaDependencies": {"pipPackages": ["six==1.17.0"]}}})
    spec.pip          # ('six==1.17.0',)
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ferry.envbuild.conda import CondaDependencies, parse_conda_yaml
from ferry.envbuild.docker_spec import docker_section, merge_run_docker
from ferry.errors import ConfigError
from ferry.spec import (
    DataInputSpec,
    DataOutputSpec,
    EnvironmentSpec,
    JobCommand,
    JobSpec,
    RunPaths,
)

#: what the reference writes that ferry reads and ignores (so its saved folders load here)
REFERENCE_ONLY = {
    "": {"databricks", "r", "inferencingStackVersion", "assetId"},
    "python": {"condaDependenciesFile"},
    "docker": {"gpuSupport"},
}  # fmt: skip
_ENV_KEYS = {"name", "version", "environmentVariables", "python", "docker", "spark"}
_PY_KEYS = {"userManagedDependencies", "interpreterPath", "condaDependencies",
            "baseCondaEnvironment"}  # fmt: skip
_DOCKER_KEYS = {"enabled", "baseImage", "baseDockerfile", "arguments", "buildContext",
                "baseImageRegistry", "platform", "sharedVolumes", "shmSize"}  # fmt: skip
_SPARK_KEYS = {"repositories", "packages", "precachePackages"}
#: the reference's default interpreter path: "whichever Python the target has"
DEFAULT_INTERPRETER = "python"


def check_keys(data: Mapping[str, Any], allowed: set[str], where: str, section: str = "") -> None:
    unknown = set(data) - allowed - REFERENCE_ONLY.get(section, set())
    if unknown:
        raise ConfigError(
            f"unknown key {sorted(unknown)[0]!r} in {where}; allowed keys: {', '.join(sorted(allowed))}"
        )


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping, not {type(value).__name__}")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of strings")
    return tuple(value)


def _variables(value: Any, where: str) -> Mapping[str, str]:
    out: dict[str, str] = {}
    for key, item in _mapping(value, where).items():
        if isinstance(item, Mapping | list | tuple):
            raise ConfigError(f"{where}.{key} must be a plain value, not {type(item).__name__}")
        out[str(key)] = "" if item is None else str(item)
    return MappingProxyType(out)


def environment_spec(data: Mapping[str, Any], where: str = "environment") -> EnvironmentSpec:
    """Check an environment in the reference's dict shape and return its spec."""
    data = _mapping(data, where)
    check_keys(data, _ENV_KEYS, where)
    version = data.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise ConfigError(f"{where}.version must be a whole number or null, not {version!r}")
    py = _mapping(data.get("python"), f"{where}.python")
    check_keys(py, _PY_KEYS, f"{where}.python", "python")
    interpreter = py.get("interpreterPath")
    if interpreter is not None and not isinstance(interpreter, str):
        raise ConfigError(f"{where}.python.interpreterPath must be a path (a string)")
    raw = py.get("condaDependencies")
    if isinstance(raw, Mapping) and "dependencies" in raw:  # the reference's conda form
        deps = parse_conda_yaml(json.dumps(dict(raw)), f"{where}.python.condaDependencies")[0]
    else:
        deps = CondaDependencies.from_dict(
            _mapping(raw, f"{where}.python.condaDependencies"), f"{where}.python.condaDependencies"
        )
    docker = _mapping(data.get("docker"), f"{where}.docker")
    check_keys(docker, _DOCKER_KEYS, f"{where}.docker", "docker")
    spark = _mapping(data.get("spark"), f"{where}.spark")
    check_keys(spark, _SPARK_KEYS, f"{where}.spark")
    packages = []
    for package in spark.get("packages") or []:
        if not isinstance(package, Mapping) or set(package) != {"group", "artifact", "version"}:
            raise ConfigError(f"{where}.spark.packages: each needs group, artifact and version")
        parts = [str(package[k]).strip() for k in ("group", "artifact", "version")]
        if not all(parts) or any(c in p for p in parts for c in ":,/ "):
            raise ConfigError(
                f"Spark package {dict(package)!r} needs a group, an artifact and a version "
                "without ':', ',', '/' or spaces (e.g. SparkPackage('com.microsoft.azure', "
                "'synapseml_2.12', '0.11.4'))"
            )
        packages.append(":".join(parts))
    base_conda = py.get("baseCondaEnvironment")
    return EnvironmentSpec(
        name=str(data.get("name") or "default-environment"),
        version=version,
        user_managed=bool(py.get("userManagedDependencies", False)),
        interpreter=None if interpreter in (None, "", DEFAULT_INTERPRETER) else interpreter,
        python=deps.python_version,
        pip=tuple(deps.pip_packages),
        pip_options=tuple(deps.pip_options),
        conda=tuple(deps.conda_packages),
        channels=tuple(deps.channels),
        base_conda_environment=None if base_conda is None else str(base_conda),
        variables=_variables(data.get("environmentVariables"), f"{where}.environmentVariables"),
        docker=docker_section(docker, f"{where}.docker"),
        spark_repositories=_strings(spark.get("repositories"), f"{where}.spark.repositories"),
        spark_packages=tuple(packages),
        spark_precache=bool(spark.get("precachePackages", True)),
    )


def conda_dependencies(spec: EnvironmentSpec) -> CondaDependencies:
    """The spec's packages as the reference's CondaDependencies (for files and display)."""
    return CondaDependencies(
        python_version=spec.python,
        pip_packages=list(spec.pip),
        conda_packages=list(spec.conda),
        channels=list(spec.channels),
        pip_options=list(spec.pip_options),
    )


def _command(definition: Mapping[str, Any]) -> JobCommand:
    command = definition.get("command")
    if command:
        if isinstance(command, list | tuple):
            return JobCommand("argv", argv_=tuple(str(c) for c in command))
        return JobCommand("shell", shell=str(command))
    script = definition.get("script")
    if not isinstance(script, str) or not script:
        raise ConfigError("the run definition has neither a script nor a command")
    arguments = definition.get("arguments") or []
    if not isinstance(arguments, list | tuple):
        raise ConfigError("the run definition's arguments must be a list")
    return JobCommand.of_script(script, tuple(str(a) for a in arguments))


def _history(definition: Mapping[str, Any]) -> tuple[tuple[str, ...], bool]:
    """``history.directories_to_watch`` (job-relative, checked) and ``output_collection``."""
    history = _mapping(definition.get("history"), "history")
    watched = history.get("directoriesToWatch", ["logs"])
    folders = []
    for folder in _strings(watched if watched is not None else [], "history.directories_to_watch"):
        parts = [p for p in folder.replace("\\", "/").split("/") if p not in ("", ".")]
        if not parts or folder.startswith("/") or ".." in parts:
            raise ConfigError(
                f"history.directories_to_watch: {folder!r} must be a folder inside the job's "
                "working folder (relative, without '..')"
            )
        folders.append("/".join(parts))
    return tuple(dict.fromkeys(folders)), bool(history.get("outputCollection", True))


#: settings of the reference that ferry records but does not act on: (key, default, why)
_NOT_ACTED_ON: tuple[tuple[str, Any, str], ...] = (
    ("priority", None, "ferry starts runs in the order they are submitted"),
    ("dataReferences", {}, "entries other than a DataReferenceConfiguration are not mounted "
                           "from run_config; put datastore.path('…') or "
                           "dataset.as_named_input('…') in the arguments"),
    ("datacaches", [], "data caches are not used by this ferry"),
    ("sourceDirectoryDataStore", None, "the source is snapshotted into the workspace instead"),
    ("autoClusterComputeSpecification", None, "compute is the target's"),
    ("kubernetescompute", None, "compute is the target's"),
    ("credentialPassthrough", False, "jobs run with the target's own credentials"),
    ("applicationEndpoints", {}, "no endpoints are opened for jobs"),
    ("paralleltask", {"maxRetriesPerWorker": 0, "workerCountPerNode": 1,
                      "terminalExitCodes": None}, "ParallelRunStep is not supported"),
    ("amlcompute", {"vmSize": None, "vmPriority": None, "retainCluster": False, "name": None,
                    "clusterMaxNodeCount": None}, "compute is the target's"),
    ("hdi", {"yarnDeployMode": "cluster"}, "the Spark target always runs the driver here"),
)  # fmt: skip


def ignored_settings(definition: Mapping[str, Any]) -> list[str]:
    """One note per setting of the reference that is set here but that ferry does not act on
    (nothing is accepted and silently ignored)."""
    notes = []
    bound = {**(definition.get("data") or {}), **(definition.get("outputData") or {})}
    for key, default, why in _NOT_ACTED_ON:
        value = definition.get(key, default)
        if key == "dataReferences" and isinstance(value, Mapping):  # those bound are acted on
            value = {name: v for name, v in value.items() if name not in bound}
        if value not in (default, None) and value != {} and value != []:
            notes.append(f"{key}={json.dumps(value, default=str)[:80]} is not used: {why}")
    return notes


def job_spec(
    *,
    run_id: str,
    experiment: str,
    target: str,
    run_dir: Path,
    definition: Mapping[str, Any],
    parent_run_id: str | None = None,
    snapshot_id: str | None = None,
) -> JobSpec:
    """Check a stored run definition and return the job the machinery runs."""
    from ferry.targets.distributed import distributed_plan

    definition = _mapping(definition, "the run definition")
    limit = definition.get("maxRunDurationSeconds")
    if limit is not None and (
        isinstance(limit, bool)
        or not isinstance(limit, int | float)
        or not math.isfinite(limit)
        or limit <= 0
    ):
        raise ConfigError(
            f"max_run_duration_seconds must be a positive number of seconds, not {limit!r}"
        )
    node_count = definition.get("nodeCount") or 1
    if isinstance(node_count, bool) or not isinstance(node_count, int) or node_count < 1:
        raise ConfigError(f"node_count must be a whole number ≥ 1, not {node_count!r}")
    spark = _mapping(definition.get("spark"), "spark")
    watched, collect = _history(definition)
    source = definition.get("sourceDirectory")
    inputs, outputs = data_inputs(definition), data_outputs(definition, run_id)
    environment, docker_notes = merge_run_docker(
        environment_spec(definition.get("environment") or {}),
        _mapping(definition.get("docker"), "docker"),
    )
    return JobSpec(
        run_id=run_id,
        experiment=experiment,
        target=target,
        paths=RunPaths(run_dir),
        command=_command(definition),
        environment=environment,
        parent_run_id=parent_run_id,
        snapshot_id=snapshot_id,
        source_dir=Path(source) if isinstance(source, str) and source else None,
        env_vars=_variables(definition.get("environmentVariables"), "environment_variables"),
        max_duration=None if limit is None else float(limit),
        distributed=distributed_plan(
            framework=str(definition.get("framework") or "Python"),
            communicator=str(definition.get("communicator") or "None"),
            node_count=node_count,
            process_count=_mapping(definition.get("pytorch"), "pytorch").get("processCount"),
            process_count_per_node=_mapping(definition.get("mpi"), "mpi").get(
                "processCountPerNode"
            ),
        ),
        node_count=node_count,
        framework=str(definition.get("framework") or "Python"),
        spark_conf=MappingProxyType(
            {str(k): v for k, v in _mapping(spark.get("configuration"), "spark").items()}
        ),
        watched_dirs=watched,
        collect_outputs=collect,
        notes=tuple([*ignored_settings(definition), *docker_notes]),
        inputs=inputs,
        outputs=outputs,
    )


# datasets ---------------------------------------------------------------------------------------
#: an input's or output's name: the job gets it as an environment variable (a data
#: reference is named after its datastore, whose name may hold '-' and start with a digit)
_DATA_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,254}$")
_MECHANISMS = {"mount": "mount", "download": "download", "direct": "direct", "upload": "upload"}


def _compute_path(value: Any, where: str) -> str | None:
    """``pathOnCompute``: absolute, or relative to the job's working folder (no '..')."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or "\x00" in value:
        raise ConfigError(f"{where}.pathOnCompute must be a path (text)")
    if not value.startswith("/") and ".." in value.replace("\\", "/").split("/"):
        raise ConfigError(f"{where}.pathOnCompute {value!r} must stay inside the working folder")
    return value


def _data_name(name: object, where: str) -> str:
    if not isinstance(name, str) or not _DATA_NAME.match(name):
        raise ConfigError(
            f"{where}: the name {name!r} is not valid (letters, digits, '_' and '-', at most "
            "255: it becomes an environment variable)"
        )
    return name


def data_inputs(definition: Mapping[str, Any]) -> tuple[DataInputSpec, ...]:
    """The datasets of ``runDefinition["data"]`` the job reads (entries ferry bound at submit)."""
    from ferry.snapshot.digest import is_digest

    raw = _mapping(definition.get("data"), "data")
    out = []
    for name, entry in raw.items():
        where = f"data[{name!r}]"
        entry = _mapping(entry, where)
        options = _mapping(entry.get("options"), f"{where}.options")
        dataset = _mapping(_mapping(entry.get("dataLocation"), where).get("dataset"), where)
        manifest, dataset_id = options.get("manifest"), dataset.get("id")
        if not is_digest(manifest) or not isinstance(dataset_id, str) or not dataset_id:
            raise ConfigError(
                f"{where} names no saved dataset version; pass datasets in the arguments as "
                "dataset.as_named_input('name') (ferry binds them when the run is submitted)"
            )
        mechanism = _MECHANISMS.get(str(entry.get("mechanism", "Mount")).lower())
        if mechanism not in ("mount", "download", "direct"):
            raise ConfigError(f"{where}.mechanism must be Mount, Download or Direct")
        single = options.get("singleFile")
        kind = str(options.get("kind") or "file")
        tabular = None
        if kind == "tabular":
            tabular = {"format": dict(_mapping(options.get("format"), where)),
                       "transforms": list(options.get("transforms") or [])}  # fmt: skip
        label = f"{dataset['name']}:{dataset['version']}" if dataset.get("name") else dataset_id
        out.append(
            DataInputSpec(
                name=_data_name(entry.get("environmentVariableName") or name, where),
                dataset_id=dataset_id,
                manifest_id=str(manifest),
                mechanism=mechanism,  # type: ignore[arg-type]
                path_on_compute=_compute_path(entry.get("pathOnCompute"), where),
                single_file=single if isinstance(single, str) and single else None,
                kind=kind,
                tabular=tabular,
                placeholder=str(options.get("placeholder") or f"DatasetConsumptionConfig:{name}"),
                label=label,
            )
        )
    return tuple(out)


def data_outputs(definition: Mapping[str, Any], run_id: str) -> tuple[DataOutputSpec, ...]:
    """The folders of ``runDefinition["outputData"]`` that become datasets (``{run-id}`` in a
    destination is this run's id)."""
    raw = _mapping(definition.get("outputData"), "outputData")
    out = []
    for name, entry in raw.items():
        where = f"outputData[{name!r}]"
        entry = _mapping(entry, where)
        location = _mapping(entry.get("outputLocation"), f"{where}.outputLocation")
        store, path = location.get("datastore"), location.get("path")
        if not isinstance(store, str) or not store or not isinstance(path, str):
            raise ConfigError(f"{where}: outputLocation needs a datastore and a path")
        extra = _mapping(entry.get("additionalOptions"), f"{where}.additionalOptions")
        registration = _mapping(extra.get("registration"), f"{where}.registration")
        mechanism = _MECHANISMS.get(str(entry.get("mechanism", "Mount")).lower())
        if mechanism not in ("mount", "upload"):
            raise ConfigError(f"{where}.mechanism must be Mount or Upload")
        fmt = extra.get("format")
        out.append(
            DataOutputSpec(
                name=_data_name(entry.get("environmentVariableName") or name, where),
                datastore=store,
                destination=path.replace("{run-id}", run_id),
                mechanism=mechanism,  # type: ignore[arg-type]
                path_on_compute=_compute_path(entry.get("pathOnCompute"), where),
                overwrite=bool(entry.get("overwrite", False)),
                register_name=registration.get("name") or None,
                description=registration.get("description"),
                tags=MappingProxyType(dict(_mapping(registration.get("tags"), where))),
                tabular=dict(fmt) if isinstance(fmt, Mapping) else None,
                placeholder=str(extra.get("placeholder") or f"DatasetOutputConfig:{name}"),
            )
        )
    return tuple(out)
