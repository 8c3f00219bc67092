"""The identity of a built environment: stable under formatting, sensitive to what is installed."""

from __future__ import annotations

import pytest
from envbuild_helpers import spec_of

from ferry.envbuild import spechash
from ferry.envbuild.conda import CondaDependencies
from ferry.envbuild.requirements import canonical_requirement, parse_requirements
from ferry.envbuild.spechash import canonical_spec, normalize_python, spec_hash
from ferry.environment import Environment
from ferry.errors import ConfigError


def digest(
    pip: list[str] | None = None,
    python: str | None = "3.11",
    conda: list[str] | None = None,
    options: list[str] | None = None,
    channels: list[str] | None = None,
    platform: str = "linux-x86_64",
) -> str:
    deps = CondaDependencies(
        python_version=python,
        pip_packages=pip or [],
        conda_packages=conda or [],
        pip_options=options or [],
        channels=channels or [],
    )
    return spec_hash(canonical_spec(spec_of(deps), default_python="3.11", platform=platform))


def from_text(text: str) -> str:
    packages, options = parse_requirements(text, "requirements.txt")
    return digest(packages, options=options)


def test_requirements_file_order_case_spacing_and_comments_do_not_change_the_hash() -> None:
    a = from_text("numpy==1.26.4\npandas>=2,<3\nscikit-learn[alldeps]==1.6.1\n")
    b = from_text(
        "# training deps\n\n"
        "Scikit_Learn[ AllDeps ] == 1.6.1   # pinned\n"
        "PANDAS <3 , >=2\n"
        "numpy == 1.26.4\n"
        "numpy==1.26.4\n"
    )
    assert a == b


def test_line_continuations_are_joined() -> None:
    assert from_text("numpy \\\n  ==1.26.4\n") == from_text("numpy==1.26.4\n")


def test_versions_change_the_hash() -> None:
    assert digest(["numpy==1.26.4"]) != digest(["numpy==1.26.3"])
    assert digest(["numpy==1.26.4"]) != digest(["numpy>=1.26.4"])
    assert digest(["numpy"]) != digest(["numpy", "six"])


def test_python_version_changes_the_hash_and_spellings_of_one_version_do_not() -> None:
    assert digest(python="3.11") != digest(python="3.12")
    assert digest(python="3.11") == digest(python="=3.11") == digest(python="3.11.*")
    # a patch release builds from an interpreter of its minor version: the same environment
    assert digest(python="3.11") == digest(python="3.11.7") == digest(python="==3.11.2")
    # no version means the Python running ferry (3.11 in this canonical form)
    assert digest(python=None) == digest(python="3.11")


def test_package_sources_and_platform_change_the_hash() -> None:
    assert digest(["six"]) != digest(["six"], options=["--index-url https://example/simple"])
    assert digest(["six"], options=["-i https://x/simple"]) == digest(
        ["six"], options=["--index-url=https://x/simple"]
    )
    assert digest(["six"]) != digest(["six"], platform="darwin-arm64")


def test_conda_packages_are_canonical_and_pip_itself_does_not_count() -> None:
    assert digest(conda=["NumPy=1.26", "pip"]) == digest(conda=["numpy=1.26"])
    assert digest(conda=["numpy=1.26"]) != digest(conda=["numpy=1.25"])
    assert digest(conda=["numpy"], channels=["conda-forge"]) != digest(
        conda=["numpy"], channels=["defaults"]
    )


def test_variables_name_version_docker_and_spark_do_not_change_the_hash() -> None:
    env = Environment("a")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["six==1.17.0"])
    other = env.clone("b")
    other.version = 7
    other.environment_variables["OMP_NUM_THREADS"] = "1"
    other.docker.base_image = "ubuntu:22.04"
    other.python.interpreter_path = "/somewhere/else/python"
    assert env.spec_hash() == other.spec_hash()
    assert env.spec_hash() is not None and len(env.spec_hash() or "") == 32


def test_user_managed_environments_have_no_hash() -> None:
    assert Environment("x", _default=True).spec_hash() is None


def test_an_environment_declaring_nothing_has_no_hash_until_it_does() -> None:
    env = Environment("default-environment")
    assert not env.python.user_managed_dependencies and env.spec_hash() is None
    env.python.conda_dependencies.add_pip_package("azureml-defaults")
    assert env.spec_hash() is None, "satisfied by ferry's runtime: still nothing to build"
    env.python.conda_dependencies.set_python_version("3.8")
    assert env.spec_hash() is not None


def test_canonical_requirement_forms() -> None:
    assert canonical_requirement("Foo.Bar_baz >= 1.0 , <2") == "foo-bar-baz<2,>=1.0"
    assert canonical_requirement("pkg @ https://h/p.whl") == "pkg @ https://h/p.whl"
    assert (
        canonical_requirement('six ; python_version  <  "3.12"') == 'six; python_version < "3.12"'
    )
    assert canonical_requirement("./local/pkg") == "./local/pkg"


def test_bad_python_versions_are_refused() -> None:
    with pytest.raises(ConfigError, match="not a version"):
        normalize_python("three", "3.11")


def test_the_build_recipe_is_part_of_the_hash() -> None:
    deps = CondaDependencies(python_version="3.11", pip_packages=["numpy==1.26.4"])
    local = canonical_spec(spec_of(deps), default_python="3.11", platform="linux-x86_64")
    assert local["recipe"] == spechash.LOCAL_RECIPE == "uv-local-1"
    by_recipe = {
        recipe: spec_hash(
            canonical_spec(spec_of(deps), default_python="3.11", platform="linux-x86_64", recipe=recipe)
        )
        for recipe in (spechash.LOCAL_RECIPE, spechash.AGENT_UV_RECIPE,
                       spechash.AGENT_VENV_RECIPE, spechash.AGENT_RECIPE)
    }  # fmt: skip
    assert len(set(by_recipe.values())) == 4
    assert by_recipe[spechash.LOCAL_RECIPE] == spec_hash(local)
    bumped = canonical_spec(
        spec_of(deps), default_python="3.11", platform="linux-x86_64", recipe="uv-local-2"
    )
    assert spec_hash(bumped) != spec_hash(local)  # bumping a recipe retires its old builds


def test_an_environment_built_here_names_the_local_recipe() -> None:
    env = Environment("here")
    env.python.conda_dependencies.add_pip_package("six==1.16.0")
    spec = spechash.local_canonical(env.to_spec())
    assert spec is not None and spec["recipe"] == spechash.LOCAL_RECIPE
    assert spechash.environment_hash(env.to_spec()) == spec_hash(spec)
