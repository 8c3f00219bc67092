"""SKLearn, PyTorch and TensorFlow: the reference's versions and defaults, the framework's
packages for each version (from the curated table, with the reason for every substitution),
and the user's pins winning over them. Pure: nothing is built."""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

import pytest

from ferry.envbuild.curated import curated_entry
from ferry.errors import ConfigError
from ferry.estimator import Estimator, PyTorch, SKLearn, TensorFlow
from ferry.estimator.frameworks import _FrameworkEstimator

# azureml-v1-data-models-estimators.md §1: versions and defaults [verified]
REFERENCE_VERSIONS = {
    SKLearn: (["0.20.3"], "0.20.3"),
    PyTorch: (["1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6"], "1.4"),
    TensorFlow: (["1.10", "1.12", "1.13", "2.0", "2.1", "2.2", "2.3"], "1.13"),
}
CURATED = {
    SKLearn: "AzureML-Scikit-learn-{}",
    PyTorch: "AzureML-PyTorch-{}-CPU",
    TensorFlow: "AzureML-TensorFlow-{}-CPU",
}


def make(cls: type[_FrameworkEstimator], **kwargs: Any) -> _FrameworkEstimator:
    kwargs.setdefault("compute_target", "local")
    kwargs.setdefault("entry_script", "train.py")
    return cls(kwargs.pop("source_directory", "src"), **kwargs)


def _names(cls: type[Any]) -> list[str]:
    return list(inspect.signature(cls).parameters)


def test_the_signatures_differ_from_the_generic_one_as_the_references() -> None:
    generic = set(_names(Estimator))
    sklearn = set(_names(SKLearn))
    assert generic - sklearn == {
        "node_count", "process_count_per_node", "distributed_backend", "distributed_training",
        "use_gpu", "custom_docker_base_image", "source_directory_data_store",
    }  # fmt: skip
    assert sklearn - generic == {"framework_version", "_enable_optimized_mode"}
    assert set(_names(PyTorch)) - generic == {"framework_version", "_enable_optimized_mode"}
    assert set(_names(TensorFlow)) - generic == {
        "framework_version", "_enable_optimized_mode", "worker_count", "parameter_server_count",
    }  # fmt: skip
    for cls in (SKLearn, PyTorch, TensorFlow):
        defaults = {p.name: p.default for p in inspect.signature(cls).parameters.values()}
        assert defaults["framework_version"] is None and defaults["use_docker"] is True
        assert defaults["_disable_validation"] is True


@pytest.mark.parametrize("cls", list(REFERENCE_VERSIONS), ids=lambda c: c.__name__)
def test_supported_versions_and_default(
    cls: type[_FrameworkEstimator], caplog: pytest.LogCaptureFixture
) -> None:
    versions, default = REFERENCE_VERSIONS[cls]
    assert cls.get_supported_versions() == sorted(versions)
    with caplog.at_level(logging.WARNING, "ferry"):
        e = make(cls)
    assert e.framework_version == default == cls.DEFAULT_VERSION
    said = f"framework_version is not specified, defaulting to version {default}." in caplog.text
    assert said == (len(versions) > 1), "the reference says so only when there is a choice"
    assert f"'{cls.__name__}' estimator is deprecated. Please use 'ScriptRunConfig'" in caplog.text


@pytest.mark.parametrize("cls", list(REFERENCE_VERSIONS), ids=lambda c: c.__name__)
def test_an_unknown_version_is_refused(cls: type[_FrameworkEstimator]) -> None:
    with pytest.raises(ConfigError, match=rf"{cls.__name__} '9.9' is not currently supported"):
        make(cls, framework_version="9.9")
    with pytest.raises(ConfigError, match="as a string"):
        make(cls, framework_version=1.4)


ALL_VERSIONS = [(cls, v) for cls, (versions, _) in REFERENCE_VERSIONS.items() for v in versions]


@pytest.mark.parametrize(
    ("cls", "version"), ALL_VERSIONS, ids=[f"{c.__name__}-{v}" for c, v in ALL_VERSIONS]
)
def test_each_version_installs_its_curated_packages_with_the_reason(
    cls: type[_FrameworkEstimator], version: str, caplog: pytest.LogCaptureFixture
) -> None:
    row = curated_entry(CURATED[cls].format(version))
    assert row is not None
    with caplog.at_level(logging.WARNING, "ferry"):
        e = make(cls, framework_version=version)
    deps = e.conda_dependencies
    assert deps.python_version == row.python == "3.8", "Python 3.6 cannot run ferry's runtime"
    fixed = ["joblib==0.14.1" if p == "joblib==0.13.2" else p for p in row.pip]
    assert deps.pip_packages == ["azureml-defaults", *fixed]
    assert f"the reference installs {row.reference}" in caplog.text
    assert "Python 3.8" in caplog.text and "(see the module docstring)" not in caplog.text
    assert e.run_config.environment.spec_hash() is not None


def test_a_curated_pin_that_fails_to_import_on_38_is_replaced_with_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "ferry"):
        e = make(SKLearn)
    assert "joblib==0.14.1" in e.conda_dependencies.pip_packages
    assert "joblib==0.13.2" not in e.conda_dependencies.pip_packages
    assert "joblib 0.13 fails to import on Python 3.8" in caplog.text


def test_a_users_companion_pin_replaces_the_frameworks(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "ferry"):
        e = make(SKLearn, pip_packages=["joblib==0.14.1"])
    deps = e.conda_dependencies
    assert deps.pip_packages == [
        "azureml-defaults", "joblib==0.14.1", "scikit-learn==0.22.2.post1", "scipy==1.3.2",
        "numpy==1.17.5",
    ]  # fmt: skip
    assert deps.python_version == "3.8"
    assert (
        "Note that you have overridden the SKLearn estimator's installation of the following "
        "packages: ['joblib']"
    ) in caplog.text


@pytest.mark.parametrize(
    ("cls", "kwargs", "left"),
    [
        (SKLearn, {"pip_packages": ["scikit-learn==1.3.2"]}, ["scipy", "joblib", "numpy"]),
        (PyTorch, {"conda_packages": ["pytorch=1.13.1"]}, ["torchvision", "numpy"]),
        (TensorFlow, {"pip_packages": ["tensorflow==2.13.1"]}, ["numpy", "protobuf"]),
    ],
    ids=["sklearn-pip", "pytorch-conda", "tensorflow-other-name"],
)
def test_a_pin_of_the_framework_itself_frees_the_other_pins_and_the_python(
    cls: type[_FrameworkEstimator],
    kwargs: dict[str, Any],
    left: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "ferry"):
        e = make(cls, **kwargs)
    deps = e.conda_dependencies
    user = kwargs.get("pip_packages", [])
    assert deps.pip_packages == ["azureml-defaults", *user, *left], "versions left to the resolver"
    assert deps.conda_packages == kwargs.get("conda_packages", [])
    assert deps.python_version is None, "the Python running ferry, unless the user names one"
    assert "replaces the framework's" in caplog.text
    assert "Note that you have overridden" in caplog.text
    pinned = make(SKLearn, pip_packages=["scikit-learn==1.3.2"], conda_packages=["python=3.9"])
    assert pinned.conda_dependencies.python_version == "3.9"


def test_no_framework_packages_with_a_conda_file_or_user_managed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "env.yml").write_text("dependencies:\n  - pip:\n    - six==1.17.0\n")
    with caplog.at_level(logging.WARNING, "ferry"):
        conda = make(SKLearn, source_directory=tmp_path, conda_dependencies_file="env.yml")
        mine = make(PyTorch, user_managed=True)
    assert conda.conda_dependencies.pip_packages == ["six==1.17.0"]
    assert "will not install any framework related packages" in caplog.text
    assert mine.conda_dependencies.pip_packages == []
    assert mine.run_config.environment.python.user_managed_dependencies is True
    assert "user_managed=True: the PyTorch 1.4 packages are not installed" in caplog.text


def test_framework_specifics(caplog: pytest.LogCaptureFixture) -> None:
    torch = make(PyTorch)
    assert torch.run_config.environment.environment_variables == {"NCCL_TREE_THRESHOLD": "0"}
    assert make(TensorFlow).run_config.environment.environment_variables == {}
    with caplog.at_level(logging.WARNING, "ferry"):
        make(SKLearn, _enable_optimized_mode=True)
    assert "prebuilt framework images, which do not exist here" in caplog.text
    with pytest.raises(TypeError):
        SKLearn("src", entry_script="t.py", compute_target="local", node_count=2)  # type: ignore[call-arg]
    gpu = make(PyTorch, use_gpu=True)
    assert (
        gpu.use_gpu
        and gpu.conda_dependencies.pip_packages == make(PyTorch).conda_dependencies.pip_packages
    )
