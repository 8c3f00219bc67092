"""The reference's curated names resolve to environments ferry builds with the same main packages
at the versions the reference had (or the nearest that installs here, with the reason)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from envbuild_helpers import run_python

from ferry.envbuild import resolve
from ferry.envbuild.builder import _uv
from ferry.envbuild.curated import CURATED, TABLE, curated_entry
from ferry.envbuild.interpreters import find_python
from ferry.envbuild.requirements import requirement_name
from ferry.environment import Environment
from ferry.errors import ConfigError

#: a spelling of every family the reference had, old and new, and the main packages it must have
FAMILIES = {
    "AzureML-Minimal": set(),
    "AzureML-Tutorial": {"pandas", "numpy", "tqdm", "scikit-learn", "matplotlib", "mlflow"},
    "AzureML-Scikit-learn-0.20.3": {"scikit-learn", "scipy", "joblib"},
    "AzureML-sklearn-0.24-ubuntu18.04-py37-cpu": {"scikit-learn"},
    "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu": {"scikit-learn", "pandas", "numpy", "scipy"},
    "AzureML-sklearn-1.5": {"scikit-learn", "pandas", "numpy", "scipy"},
    "AzureML-PyTorch-1.0-CPU": {"torch", "torchvision"},
    "AzureML-PyTorch-1.6-GPU": {"torch", "torchvision"},
    "AzureML-pytorch-1.10-ubuntu18.04-py38-cuda11-gpu": {"torch", "torchvision"},
    "AzureML-TensorFlow-1.13-CPU": {"tensorflow-cpu"},
    "AzureML-TensorFlow-2.2-GPU": {"tensorflow-cpu"},
    "AzureML-tensorflow-2.4-ubuntu18.04-py37-cuda11-gpu": {"tensorflow-cpu"},
}
#: the framework whose version a name carries: "<framework>-<version>" in the name
FRAMEWORK = {"pytorch": "torch", "tensorflow": "tensorflow-cpu", "sklearn": "scikit-learn"}


def _pins(env: Environment) -> dict[str, str]:
    out = {}
    for requirement in env.python.conda_dependencies.pip_packages:
        name, _, version = requirement.partition("==")
        out[requirement_name(name) or name] = version
    return out


def test_every_family_old_and_new_is_curated_with_its_main_packages(workspace: Any) -> None:
    listed = Environment.list(workspace)
    for name, packages in FAMILIES.items():
        assert name in listed, name
        env = Environment.get(workspace, name)
        assert env.name == name and env.version == 1
        assert not env.python.user_managed_dependencies, "curated environments are built"
        assert packages <= set(_pins(env)), (name, _pins(env))


def test_every_curated_environment_pins_everything_for_a_python_found_here(
    workspace: Any,
) -> None:
    for name in CURATED:
        env = Environment.get(workspace, name)
        deps = env.python.conda_dependencies
        assert all(version for version in _pins(env).values()), f"{name}: exact pins only"
        assert deps.python_version is not None
        assert find_python(deps.python_version).version[:2] >= (3, 8)
        assert env.spec_hash() is not None


def test_names_carry_their_framework_version_or_the_table_says_why_not() -> None:
    for entry in TABLE:
        for name in entry.names:
            match = re.search(r"(pytorch|tensorflow|sklearn)-(\d+\.\d+)", name, re.IGNORECASE)
            if not match:
                continue
            package = FRAMEWORK[match.group(1).lower()]
            pinned = next(p for p in entry.pip if p.startswith(f"{package}=="))
            if not pinned.removeprefix(f"{package}==").startswith(match.group(2) + "."):
                assert "nearest" in entry.why, (name, pinned, entry.why)


def test_rows_of_the_reference_say_what_it_had_and_why_ferry_differs() -> None:
    for entry in TABLE:
        if not entry.names[0].startswith("AzureML-"):
            continue
        assert entry.reference.startswith("python "), entry.names
        python = entry.reference.removeprefix("python ").split(";")[0]
        if not python.startswith(entry.python):
            assert "Python 3.8" in entry.why, entry.names
        assert "azureml" not in " ".join(entry.pip), "ferry's runtime stands in for the SDK"


def test_names_are_found_in_any_letter_case_and_kept_for_curated_environments(
    workspace: Any,
) -> None:
    assert Environment.get(workspace, "azureml-minimal").name == "AzureML-Minimal"
    assert curated_entry("AZUREML-SKLEARN-1.5") is curated_entry("AzureML-sklearn-1.5")
    with pytest.raises(ConfigError, match="only version 1"):
        Environment.get(workspace, "AzureML-Tutorial", version=3)
    tutorial = Environment.get(workspace, "AzureML-Tutorial")
    with pytest.raises(ConfigError, match="kept for curated environments"):
        tutorial.register(workspace)
    with pytest.raises(ConfigError, match="kept for curated"):
        Environment("AzureML-mine").register(workspace)
    assert tutorial.clone("my-tutorial").register(workspace).version == 1


@pytest.mark.slow
def test_every_curated_environment_resolves_on_the_package_index(tmp_path: Path) -> None:
    """Each row installs on Linux for its Python: uv resolves it against the package index
    (the rows side by side: the time is the index's)."""
    uv = _uv()
    rows = {(e.python, e.pip): e.names[0] for e in TABLE if e.pip}
    procs = {}
    for index, ((python, pins), name) in enumerate(rows.items()):
        requirements = tmp_path / f"{index}.in"
        requirements.write_text("\n".join(pins) + "\n")
        procs[name, pins] = subprocess.Popen(
            [uv, "pip", "compile", str(requirements), "--python-version", python,
             "--python-platform", "x86_64-manylinux_2_28", "--no-header", "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    for (name, pins), proc in procs.items():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{name}: {err[-2000:]}"
        for pin in pins:
            assert pin.lower() in out.lower(), (name, pin)


def test_azureml_minimal_builds_a_python_38_environment(envs_root: Path, workspace: Any) -> None:
    resolved = resolve(Environment.get(workspace, "AzureML-Minimal").to_spec(), envs_root)
    assert run_python(resolved, "import sys; print(sys.version_info[:2])") == "(3, 8)"
    assert resolved.spec_hash is not None


@pytest.mark.slow
def test_the_sklearn_environment_builds_with_the_references_versions_and_trains(
    envs_root: Path, workspace: Any
) -> None:
    env = Environment.get(workspace, "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu")
    resolved = resolve(env.to_spec(), envs_root)
    code = (
        "import sys, numpy, scipy, sklearn, pandas, matplotlib\n"
        "from sklearn.linear_model import Ridge\n"
        "x = numpy.arange(20.0).reshape(-1, 1)\n"
        "model = Ridge(alpha=1e-9).fit(x, 3 * x.ravel() + 2)\n"
        "print('%d.%d' % sys.version_info[:2], numpy.__version__, scipy.__version__, "
        "sklearn.__version__, pandas.__version__, matplotlib.__version__, "
        "round(float(model.coef_[0]), 3))"
    )
    assert run_python(resolved, code).split() == [
        "3.8", "1.21.6", "1.7.3", "1.0.2", "1.3.5", "3.5.3", "3.0",
    ]  # fmt: skip
    assert "scikit-learn==1.0.2" in (resolved.lock or "")
