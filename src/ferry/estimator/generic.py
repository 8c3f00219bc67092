"""Estimator: the reference's deprecated one-object way to configure a training run.

An estimator only builds a :class:`~ferry.runconfig.RunConfiguration` (script, arguments, target,
distributed settings, environment) and submits a :class:`~ferry.script_run_config.ScriptRunConfig`
around it, as the reference does; ``experiment.submit(estimator)`` therefore runs on every target
a ScriptRunConfig runs on. The argument rules, defaults, conflicts and messages follow the
reference (``../shared/reference/azureml-v1-data-models-estimators.md`` §1); where ferry differs
it says so when it happens:

* ``use_docker=True`` (the default) with no image runs as a plain environment, with a note at
  submit; an explicit ``custom_docker_image`` is refused at submit by a target without containers.
* ``use_gpu``, ``shm_size`` and ``image_registry_details`` pick Docker images in the reference;
  here they are recorded and a note says so. ``inputs``, ``source_directory_data_store``,
  ``vm_size`` and ``vm_priority`` are recorded on the run definition (noted at submit: ferry has
  no datastores and no run-based clusters yet).
* ``resume_from`` is a path the job can read (the reference's ``DataPath`` mount): it is passed
  as ``--resume-from <path>``.

Example::

    est = Estimator("src", entry_script="train.py", compute_target="local",
                    script_params={"--alpha": 0.5, "--verbose": None}, pip_packages=["six"])
    run = Experiment(ws, "est").submit(est)       # python train.py --alpha 0.5 --verbose
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ferry.environment import CondaDependencies, Environment
from ferry.errors import ConfigError
from ferry.estimator.distributed import TYPED, apply_distributed
from ferry.estimator.packages import Framework, PackageRequest, estimator_environment
from ferry.estimator.settings import (
    check_bool,
    check_duration,
    check_strings,
    check_target,
    check_variables,
    environment_conflicts,
    input_references,
    resolve_aliases,
    script_params_to_arguments,
)
from ferry.runconfig import RunConfiguration
from ferry.script_run_config import ScriptRunConfig

if TYPE_CHECKING:
    from ferry.experiment import Experiment
    from ferry.run import Run

log = logging.getLogger("ferry")

#: submit() arguments the reference lets override the estimator's (others are refused)
_OVERRIDABLE = ("script_params", "inputs", "source_directory_data_store")


@dataclass
class EstimatorArguments:
    """Every constructor argument of the reference's estimators, with its defaults."""

    source_directory: Any
    compute_target: Any = None
    vm_size: Any = None
    vm_priority: Any = None
    entry_script: Any = None
    script_params: Any = None
    node_count: Any = 1
    process_count_per_node: Any = 1
    distributed_backend: Any = None
    distributed_training: Any = None
    use_gpu: Any = False
    use_docker: Any = True
    custom_docker_base_image: Any = None
    custom_docker_image: Any = None
    image_registry_details: Any = None
    user_managed: Any = False
    conda_packages: Any = None
    pip_packages: Any = None
    conda_dependencies_file_path: Any = None
    pip_requirements_file_path: Any = None
    conda_dependencies_file: Any = None
    pip_requirements_file: Any = None
    environment_variables: Any = None
    environment_definition: Any = None
    inputs: Any = None
    source_directory_data_store: Any = None
    shm_size: Any = None
    resume_from: Any = None
    max_run_duration_seconds: Any = None
    extra: dict[str, Any] = field(default_factory=dict)  # a framework's own (worker_count …)

    @classmethod
    def of(
        cls, arguments: Mapping[str, Any], extra: dict[str, Any] | None = None
    ) -> EstimatorArguments:
        """The fields among a constructor's ``locals()``; the reference's private switches
        (``_disable_validation``, linting) have nothing to act on here and are left out."""
        names = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in arguments.items() if k in names}, extra=extra or {})


class Estimator:
    """A training script, its arguments, compute target and environment in one object
    (deprecated in the reference since SDK 1.19: use :class:`~ferry.ScriptRunConfig`).

    Example::

        est = Estimator("src", compute_target="local", entry_script="train.py",
                        script_params={"--alpha": 0.5}, conda_packages=["scikit-learn"])
        Experiment(ws, "diabetes").submit(est).wait_for_completion(show_output=True)
    """

    #: the ``distributed_backend`` strings this estimator accepts
    _BACKENDS: ClassVar[tuple[str, ...]] = ("mpi",)
    #: the typed ``distributed_training`` configurations it accepts
    _TYPED: ClassVar[tuple[type, ...]] = TYPED
    _DEPRECATION: ClassVar[str] = (
        "'Estimator' is deprecated. Please use 'ScriptRunConfig' from "
        "'azureml.core.script_run_config' (ferry.ScriptRunConfig) with your own defined "
        "environment or a curated environment."
    )

    def __init__(
        self,
        source_directory: str | os.PathLike[str],
        *,
        compute_target: Any = None,
        vm_size: str | None = None,
        vm_priority: str | None = None,
        entry_script: str | None = None,
        script_params: Mapping[str, Any] | None = None,
        node_count: int = 1,
        process_count_per_node: int = 1,
        distributed_backend: str | None = None,
        distributed_training: Any = None,
        use_gpu: bool = False,
        use_docker: bool = True,
        custom_docker_base_image: str | None = None,
        custom_docker_image: str | None = None,
        image_registry_details: Any = None,
        user_managed: bool = False,
        conda_packages: list[str] | None = None,
        pip_packages: list[str] | None = None,
        conda_dependencies_file_path: str | None = None,
        pip_requirements_file_path: str | None = None,
        conda_dependencies_file: str | None = None,
        pip_requirements_file: str | None = None,
        environment_variables: Mapping[str, str] | None = None,
        environment_definition: Environment | None = None,
        inputs: list[Any] | None = None,
        source_directory_data_store: Any = None,
        shm_size: str | None = None,
        resume_from: str | os.PathLike[str] | None = None,
        max_run_duration_seconds: int | None = None,
        _disable_validation: bool = True,
        _show_lint_warnings: bool = False,
        _show_package_warnings: bool = False,
    ) -> None:
        arguments = dict(locals())
        log.warning(self._DEPRECATION)
        self._configure(EstimatorArguments.of(arguments))

    # building ---------------------------------------------------------------------------------
    def _framework(self) -> Framework | None:
        """The framework whose packages this estimator adds (None for the generic one)."""
        return None

    def _configure(self, a: EstimatorArguments) -> None:
        owner = type(self).__name__
        source = a.source_directory or "."  # the reference's default for an empty one
        if not isinstance(source, str | os.PathLike):
            raise ConfigError(
                f"{owner}: source_directory must be the path of the folder holding entry_script, "
                f"not {type(source).__name__}"
            )
        self._source_directory = os.fspath(source)
        if not isinstance(a.entry_script, str) or not a.entry_script.strip():
            raise ConfigError(
                f"{owner}: entry_script is required: the training script, relative to "
                f"source_directory (e.g. entry_script='train.py'), not {a.entry_script!r}"
            )
        if a.entry_script.lower().endswith(".ipynb"):
            raise ConfigError(
                f"{owner}: entry_script {a.entry_script!r} is a notebook; ferry runs scripts "
                "(convert it with `jupyter nbconvert --to script`)"
            )
        self.entry_script: str = a.entry_script
        if a.script_params is not None and not isinstance(a.script_params, Mapping):
            raise ConfigError(
                f"{owner}: script_params must be a dict like {{'--alpha': 0.5}}, not "
                f"{type(a.script_params).__name__}"
            )
        #: the script's parameters as given (``HyperDriveConfig(estimator=…)`` reads them)
        self.script_params: dict[str, Any] = dict(a.script_params or {})
        self._resume_from = _resume_from(owner, a.resume_from)
        rc = RunConfiguration(script=self.entry_script, arguments=self._arguments())
        rc.target = check_target(owner, a.compute_target, a.vm_size, a.vm_priority)
        rc.amlcompute.vm_size, rc.amlcompute.vm_priority = a.vm_size, a.vm_priority
        apply_distributed(
            rc,
            owner=owner,
            backends=self._BACKENDS,
            node_count=a.node_count,
            process_count_per_node=a.process_count_per_node,
            backend=a.distributed_backend,
            training=a.distributed_training,
            typed=self._TYPED,
            **a.extra,
        )
        rc.environment, notes = self._environment(owner, a)
        rc.environment_variables = check_variables(owner, a.environment_variables)
        rc.max_run_duration_seconds = check_duration(owner, a.max_run_duration_seconds)
        rc.data_references = input_references(owner, a.inputs)
        store = a.source_directory_data_store
        rc.source_directory_data_store = (
            None if store is None else str(getattr(store, "name", store))
        )
        self.use_gpu: bool = check_bool(owner, "use_gpu", a.use_gpu)
        if self.use_gpu:
            notes.append(
                "use_gpu=True is recorded (estimator.use_gpu); the reference picks a GPU Docker "
                "image with it, which means nothing here: the job sees the GPUs its target has"
            )
        if a.shm_size is not None:
            rc.docker.shm_size = str(a.shm_size)
            notes.append(f"shm_size={a.shm_size!r} is a Docker setting: not used by this ferry")
        if a.image_registry_details is not None:
            notes.append("image_registry_details is a Docker setting: not used by this ferry")
        for note in notes:
            log.warning("%s: %s", owner, note)
        self._run_config = rc

    def _environment(self, owner: str, a: EstimatorArguments) -> tuple[Environment, list[str]]:
        use_docker = check_bool(owner, "use_docker", a.use_docker)
        user_managed = check_bool(owner, "user_managed", a.user_managed)
        image, conda_file, pip_file = resolve_aliases(owner, a)
        if not use_docker and image is not None:
            raise ConfigError(
                f"{owner}: use_docker=False does not go with custom_docker_image={image!r}; "
                "drop one of them"
            )
        pip = check_strings(owner, "pip_packages", a.pip_packages)
        conda = check_strings(owner, "conda_packages", a.conda_packages)
        framework = self._framework()
        environment_conflicts(owner, a, image=image, conda_file=conda_file, pip_file=pip_file)
        if framework is not None and (a.environment_definition is not None or conda_file):
            log.warning(
                "If environment_definition or conda_dependencies_file is specified, ferry will "
                "not install any framework related packages on behalf of the user."
            )
        if a.environment_definition is not None:
            # a copy: the reference changed the caller's environment (PyTorch's NCCL variable)
            return copy.deepcopy(a.environment_definition), []
        request = PackageRequest(
            pip_packages=pip,
            conda_packages=conda,
            pip_requirements_file=pip_file,
            conda_dependencies_file=conda_file,
            user_managed=user_managed,
            use_docker=use_docker,
            custom_docker_image=image,
        )
        return estimator_environment(
            request, self._source_directory, None if conda_file else framework
        )

    def _arguments(self, overrides: Mapping[str, Any] | None = None) -> list[Any]:
        params = {**self.script_params, **(overrides or {})}
        resume = ["--resume-from", self._resume_from] if self._resume_from else []
        return script_params_to_arguments(type(self).__name__, params) + resume

    # the reference's properties ---------------------------------------------------------------
    @property
    def source_directory(self) -> str:
        return self._source_directory

    @property
    def run_config(self) -> RunConfiguration:
        """The run configuration this estimator submits (changes to it are submitted too)."""
        return self._run_config

    @property
    def conda_dependencies(self) -> CondaDependencies:
        return self._run_config.environment.python.conda_dependencies

    # submitting -------------------------------------------------------------------------------
    def _to_script_run_config(
        self,
        *,
        script_params: Mapping[str, Any] | None = None,
        inputs: list[Any] | None = None,
        source_directory_data_store: Any = None,
    ) -> ScriptRunConfig:
        """The ScriptRunConfig this estimator submits (a fresh copy each time); the keywords are
        the reference's submit-time overrides (``script_params`` merged over the estimator's)."""
        owner = type(self).__name__
        if script_params is not None and not isinstance(script_params, Mapping):
            raise ConfigError(f"{owner}: submit(script_params=…) must be a dict")
        rc = copy.deepcopy(self._run_config)
        rc.arguments = self._arguments(script_params)
        rc.data_references = {**rc.data_references, **input_references(owner, inputs)}
        if source_directory_data_store is not None:
            store = source_directory_data_store
            rc.source_directory_data_store = str(getattr(store, "name", store))
        return ScriptRunConfig(
            source_directory=self._source_directory,
            script=rc.script,
            arguments=list(rc.arguments),
            run_config=rc,
        )

    def _ferry_submit(
        self, experiment: Experiment, tags: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> Run:
        """``experiment.submit(estimator, tags=…)``: submit the estimator's ScriptRunConfig."""
        unknown = set(kwargs) - {*_OVERRIDABLE, "run_id", "_parent_run_id"}
        if unknown:
            raise ConfigError(
                f"{sorted(unknown)} parameters cannot be overridden. Allowed parameters are: "
                "script_params, inputs and source_directory_data_store (and tags, run_id)"
            )
        self._check_entry_script()
        config = self._to_script_run_config(**{k: kwargs[k] for k in _OVERRIDABLE if k in kwargs})
        passed = {k: kwargs[k] for k in ("run_id", "_parent_run_id") if k in kwargs}
        return experiment.submit(config, tags=tags, **passed)

    def _check_entry_script(self) -> None:
        owner = type(self).__name__
        source = Path(self._source_directory).expanduser()
        if not source.is_dir():
            raise ConfigError(
                f"{owner}: source_directory {str(source)!r} does not exist or is not a folder"
            )
        if not (source / self.entry_script).is_file():
            raise ConfigError(
                f"{owner}: entry_script {self.entry_script!r} does not exist in source_directory "
                f"{str(source)!r}; name the training script relative to that folder"
            )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(source_directory={self._source_directory!r}, "
            f"entry_script={self.entry_script!r}, target={self._run_config.target!r})"
        )


def _resume_from(owner: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike) or not os.fspath(value):
        raise ConfigError(
            f"{owner}: resume_from must be a path the job can read (a folder with the checkpoint "
            f"or model files), not {type(value).__name__}; ferry has no DataPath yet"
        )
    return os.fspath(value)
