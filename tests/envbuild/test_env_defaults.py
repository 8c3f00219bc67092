"""The reference's defaults: an environment that declares nothing builds nothing, azureml-defaults
is satisfied by ferry's runtime, and a pinned Python builds from an interpreter of its minor."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from envbuild_helpers import pip_env, run_python, spec_of

from ferry.envbuild import EnvCache, environment_hash, resolve
from ferry.envbuild.defaults import declares_nothing, effective_environment
from ferry.envbuild.resolver import default_interpreter
from ferry.environment import CondaDependencies, Environment
from ferry.spec import EnvironmentSpec


def test_an_environment_declaring_nothing_runs_with_the_targets_interpreter() -> None:
    env = EnvironmentSpec(name="d", user_managed=False, interpreter="/ignored/python")
    effective, notes = effective_environment(env)
    assert effective.user_managed and effective.interpreter is None and notes == ()
    # what counts as declaring something
    assert not declares_nothing(EnvironmentSpec(user_managed=False, pip=("six",)))
    assert not declares_nothing(EnvironmentSpec(user_managed=False, python="3.8.13"))
    assert not declares_nothing(EnvironmentSpec(user_managed=False, conda=("numpy",)))
    assert not declares_nothing(
        EnvironmentSpec(user_managed=False, pip_options=("--index-url https://x.test/simple",))
    )
    # variables are applied at run time; conda's pip and setuptools install nothing here
    assert declares_nothing(
        EnvironmentSpec(user_managed=False, variables={"A": "1"}, conda=("pip=20.2.4", "wheel"))
    )
    # a user-managed environment is left as it is
    mine = EnvironmentSpec(user_managed=True, interpreter="/usr/bin/python3", pip=("six",))
    assert effective_environment(mine) == (mine, ())


def test_azureml_defaults_and_the_sdk_meta_package_are_dropped_with_a_note() -> None:
    env = EnvironmentSpec(
        name="ref",
        user_managed=False,
        pip=("azureml-defaults==1.8.0", "AzureML_SDK[notebooks]", "azureml-core==1.8.0", "six"),
    )
    effective, notes = effective_environment(env)
    assert effective.pip == ("azureml-core==1.8.0", "six"), "azureml-core asked for is kept"
    assert not effective.user_managed
    assert len(notes) == 2
    assert notes[0].startswith("azureml-defaults==1.8.0: not installed")
    assert "Run.get_context()" in notes[0]
    assert "AzureML_SDK[notebooks]: not installed" in notes[1] and "azureml-core" in notes[1]
    only = EnvironmentSpec(name="only", user_managed=False, pip=("azureml-defaults",))
    effective, notes = effective_environment(only)
    assert effective.user_managed and "no build" in notes[-1]


def test_the_default_fast_path_builds_nothing_and_keeps_variables(tmp_path: Path) -> None:
    env = Environment("default-environment")
    env.environment_variables["SEED"] = "7"
    assert not env.python.user_managed_dependencies
    lines: list[str] = []
    resolved = resolve(env.to_spec(), tmp_path / "envs", lines.append)
    assert resolved.python == default_interpreter() == sys.executable
    assert resolved.variables == {"SEED": "7"} and not resolved.built
    assert resolved.spec_hash is None and env.spec_hash() is None
    assert lines == [] and not (tmp_path / "envs").exists(), "no build, no folder"
    env.python.conda_dependencies.add_pip_package("azureml-defaults")
    resolved = resolve(env.to_spec(), tmp_path / "envs", lines.append)
    assert resolved.python == sys.executable and not resolved.built
    assert any("azureml-defaults: not installed" in line for line in lines)


def test_a_built_environment_never_installs_azureml_defaults(envs_root: Path) -> None:
    env = pip_env("ref-style", "azureml-defaults==1.8.0", "six==1.17.0")
    lines: list[str] = []
    resolved = resolve(env.to_spec(), envs_root, lines.append)
    assert resolved.lock is not None and "six==1.17.0" in resolved.lock
    assert "azureml" not in resolved.lock
    assert any(line.startswith("azureml-defaults==1.8.0: not installed") for line in lines)
    # the same as an environment without it: one build, one hash
    assert environment_hash(pip_env("plain", "six==1.17.0").to_spec()) == resolved.spec_hash


@pytest.mark.parametrize(
    ("pin", "minor"), [("3.9", (3, 9)), ("3.8.13", (3, 8)), ("=3.12.0", (3, 12))]
)
def test_a_pinned_python_builds_from_an_interpreter_of_its_minor_version(
    envs_root: Path, pin: str, minor: tuple[int, int]
) -> None:
    deps = CondaDependencies.create(python_version=pin, pip_packages=["six==1.17.0"])
    lines: list[str] = []
    resolved = resolve(spec_of(deps, f"py{pin}"), envs_root, lines.append)
    version = run_python(resolved, "import sys, six; print('%d.%d' % sys.version_info[:2])")
    wanted = ".".join(map(str, minor))
    assert version == wanted
    built = EnvCache(envs_root).read(resolved.spec_hash or "")
    assert built is not None and built.meta["spec"]["python"] == wanted
    if pin.count(".") == 2:  # a patch pin served by another patch release says so in the log
        used = built.meta["python"]["version"]
        if used != pin.lstrip("="):
            assert any(f"Python {pin.lstrip('=')} asked; using {used}" in line for line in lines)


def test_a_conda_file_pinning_a_patch_release_shares_the_build_of_its_minor(
    envs_root: Path, tmp_path: Path
) -> None:
    conda = tmp_path / "environment.yml"
    conda.write_text(
        "name: project_environment\ndependencies:\n  - python=3.8.13\n  - pip:\n    - six==1.17.0\n"
    )
    pinned = Environment.from_conda_specification("pinned", conda)
    minor = Environment("minor")
    minor.python.conda_dependencies = CondaDependencies.create(
        python_version="3.8", pip_packages=["six==1.17.0"]
    )
    assert pinned.spec_hash() == minor.spec_hash()
    resolved = resolve(pinned.to_spec(), envs_root)
    assert run_python(resolved, "import sys; print(sys.version_info[:2] == (3, 8))") == "True"
