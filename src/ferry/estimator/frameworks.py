"""The framework estimators: SKLearn, PyTorch and TensorFlow, with the reference's versions.

Each is an :class:`~ferry.estimator.Estimator` that adds its framework's packages for
``framework_version`` (default and supported versions as the reference's bundled scenario files).
The packages come from the curated environment of the same framework and version
(:mod:`ferry.envbuild.curated`), which records where ferry's build differs from the reference's
image (Python 3.8 instead of 3.6, the nearest versions with wheels for it) and why.

Example::

    est = SKLearn("src", entry_script="train.py", compute_target="local",
                  script_params={"--C": 1.0}, pip_packages=["joblib==0.14.1"])
    est.framework_version                        # '0.20.3'
    est.conda_dependencies.pip_packages          # azureml-defaults, joblib, scikit-learn, …
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, ClassVar

from ferry.envbuild.curated import curated_entry
from ferry.environment import Environment
from ferry.errors import ConfigError
from ferry.estimator.generic import Estimator, EstimatorArguments
from ferry.estimator.packages import Framework
from ferry.runconfig import MpiConfiguration, PyTorchConfiguration, TensorflowConfiguration

log = logging.getLogger("ferry")


#: pins of the curated table that install on Python 3.8 but fail there at import, with the
#: release that works (a no-op once the table has it)
class _FrameworkEstimator(Estimator):
    """An estimator that installs one framework at one of the reference's versions."""

    FRAMEWORK_NAME: ClassVar[str] = ""
    DEFAULT_VERSION: ClassVar[str] = ""
    _VERSIONS: ClassVar[tuple[str, ...]] = ()
    #: the curated environment with the framework's packages, by version
    _CURATED: ClassVar[str] = ""
    #: the pip projects that are the framework itself
    _MAIN: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def get_supported_versions(cls) -> list[str]:
        """The framework versions this estimator installs, as the reference lists them."""
        return sorted(cls._VERSIONS)

    @property
    def framework_version(self) -> str:
        return self._framework_version

    def _framework(self) -> Framework:
        row = curated_entry(self._CURATED.format(version=self._framework_version))
        if row is None:  # a table row removed under this class: a bug, said plainly
            raise ConfigError(f"{self.FRAMEWORK_NAME} {self._framework_version}: no package table")
        return Framework(self.FRAMEWORK_NAME, self._framework_version, row, self._MAIN)

    def _setup(self, arguments: dict[str, Any]) -> None:
        """Check ``framework_version``, then configure as the generic estimator does."""
        version = arguments["framework_version"]
        if arguments["_enable_optimized_mode"]:
            log.warning(
                "%s: _enable_optimized_mode builds on the reference's prebuilt framework images, "
                "which do not exist here; the environment is built as usual",
                self.FRAMEWORK_NAME,
            )
        if version is not None and (not isinstance(version, str) or version not in self._VERSIONS):
            raise ConfigError(
                f"{self.FRAMEWORK_NAME} {version!r} is not currently supported by the "
                f"{self.FRAMEWORK_NAME} estimator (framework_version must be one of "
                f"{', '.join(repr(v) for v in self._VERSIONS)}, as a string). To use another "
                "version, switch to the generic Estimator class (or a ScriptRunConfig) and pin it "
                "in pip_packages"
            )
        self._framework_version = version or self.DEFAULT_VERSION
        names = ("worker_count", "parameter_server_count")
        extra: dict[str, Any] = {k: arguments[k] for k in names if k in arguments}
        self._configure(EstimatorArguments.of(arguments, extra))
        built = not self._run_config.environment.python.user_managed_dependencies
        if version is None and built and len(self._VERSIONS) > 1:
            log.warning(
                "framework_version is not specified, defaulting to version %s.",
                self.DEFAULT_VERSION,
            )


class SKLearn(_FrameworkEstimator):
    """An estimator for scikit-learn training scripts (deprecated in the reference: use a
    ScriptRunConfig with a curated environment). Single node, CPU only, as the reference."""

    FRAMEWORK_NAME = "SKLearn"
    DEFAULT_VERSION = "0.20.3"
    _VERSIONS = ("0.20.3",)
    _CURATED = "AzureML-Scikit-learn-{version}"
    _MAIN = frozenset({"scikit-learn"})
    _BACKENDS = ()
    _DEPRECATION = (
        "'SKLearn' estimator is deprecated. Please use 'ScriptRunConfig' from "
        "'azureml.core.script_run_config' (ferry.ScriptRunConfig) with your own defined "
        "environment or the AzureML-Tutorial curated environment."
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
        use_docker: bool = True,
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
        shm_size: str | None = None,
        resume_from: str | os.PathLike[str] | None = None,
        max_run_duration_seconds: int | None = None,
        framework_version: str | None = None,
        _enable_optimized_mode: bool = False,
        _disable_validation: bool = True,
        _show_lint_warnings: bool = False,
        _show_package_warnings: bool = False,
    ) -> None:
        arguments = dict(locals())
        log.warning(self._DEPRECATION)
        self._setup(arguments)


class PyTorch(_FrameworkEstimator):
    """An estimator for PyTorch training scripts (deprecated in the reference: use a
    ScriptRunConfig with a curated environment and ``PyTorchConfiguration``)."""

    FRAMEWORK_NAME = "PyTorch"
    DEFAULT_VERSION = "1.4"
    _VERSIONS = ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6")
    _CURATED = "AzureML-PyTorch-{version}-CPU"
    _MAIN = frozenset({"torch"})
    _BACKENDS = ("mpi", "gloo", "nccl")
    _TYPED = (MpiConfiguration, PyTorchConfiguration)
    _DEPRECATION = (
        "'PyTorch' estimator is deprecated. Please use 'ScriptRunConfig' from "
        "'azureml.core.script_run_config' (ferry.ScriptRunConfig) with your own defined "
        "environment or one of the curated PyTorch environments."
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
        framework_version: str | None = None,
        _enable_optimized_mode: bool = False,
        _disable_validation: bool = True,
        _show_lint_warnings: bool = False,
        _show_package_warnings: bool = False,
    ) -> None:
        arguments = dict(locals())
        log.warning(self._DEPRECATION)
        self._setup(arguments)
        # as the reference (a workaround for horovod hangs with NCCL 2.4)
        self._run_config.environment.environment_variables["NCCL_TREE_THRESHOLD"] = "0"


class TensorFlow(_FrameworkEstimator):
    """An estimator for TensorFlow training scripts (deprecated in the reference: use a
    ScriptRunConfig with a curated environment). ``worker_count`` and
    ``parameter_server_count`` go with ``distributed_backend='ps'`` only, as the reference."""

    FRAMEWORK_NAME = "TensorFlow"
    DEFAULT_VERSION = "1.13"
    _VERSIONS = ("1.10", "1.12", "1.13", "2.0", "2.1", "2.2", "2.3")
    _CURATED = "AzureML-TensorFlow-{version}-CPU"
    _MAIN = frozenset({"tensorflow", "tensorflow-cpu", "tensorflow-gpu"})
    _BACKENDS = ("mpi", "ps")
    _TYPED = (MpiConfiguration, TensorflowConfiguration)
    _DEPRECATION = (
        "'TensorFlow' estimator is deprecated. Please use 'ScriptRunConfig' from "
        "'azureml.core.script_run_config' (ferry.ScriptRunConfig) with your own defined "
        "environment or one of the curated TensorFlow environments."
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
        worker_count: int = 1,
        parameter_server_count: int = 1,
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
        framework_version: str | None = None,
        _enable_optimized_mode: bool = False,
        _disable_validation: bool = True,
        _show_lint_warnings: bool = False,
        _show_package_warnings: bool = False,
    ) -> None:
        arguments = dict(locals())
        log.warning(self._DEPRECATION)
        if (worker_count != 1 or parameter_server_count != 1) and (
            not isinstance(distributed_backend, str) or distributed_backend.lower() != "ps"
        ):
            raise ConfigError(
                "TensorFlow: worker_count and parameter_server_count are used only with "
                "distributed_backend='ps'; give distributed_training=TensorflowConfiguration("
                "worker_count=…, parameter_server_count=…) instead"
            )
        for name, value in (("worker_count", worker_count),
                            ("parameter_server_count", parameter_server_count)):  # fmt: skip
            if value != 1:
                log.warning(
                    "'%s' parameter will be deprecated. Please use it as part of "
                    "'distributed_training' parameter.",
                    name,
                )
        self._setup(arguments)
