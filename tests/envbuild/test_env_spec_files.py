"""Specification files: requirements, conda YAML, saved folders; bad files fail clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ferry.envbuild.conda import conda_only, conda_to_pip
from ferry.environment import CondaDependencies, Environment, SparkPackage
from ferry.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# requirements files -------------------------------------------------------------------------
def test_requirements_file_with_includes_and_index_options(awkward_dir: Path) -> None:
    write(awkward_dir / "base reqs.txt", "six==1.17.0\n--extra-index-url https://extra/simple\n")
    req = write(
        awkward_dir / "requirements.txt",
        "-r base reqs.txt\n# comment\nidna>=3 # trailing\n-i https://idx/simple\n--pre\n",
    )
    env = Environment.from_pip_requirements("sk", req)
    deps = env.python.conda_dependencies
    assert deps.pip_packages == ["six==1.17.0", "idna>=3"]
    assert deps.pip_options == [
        "--extra-index-url https://extra/simple",
        "--index-url https://idx/simple",
        "--pre",
    ]
    assert not env.python.user_managed_dependencies


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("--frobnicate\n", "unknown option '--frobnicate'"),
        ("-e ./pkg\n", "editable installs"),
        ("-c constraints.txt\n", "constraint files"),
        ("numpy=1.26\n", "did you mean 'numpy==1.26'"),
        ("numpy==1.26.4,wat\n", "bad version specifier 'wat'"),
        ("-r missing.txt\n", "does not exist"),
        ("--index-url\n", "needs a value"),
    ],
)
def test_bad_requirements_files_name_the_file_line_and_problem(
    awkward_dir: Path, text: str, message: str
) -> None:
    req = write(awkward_dir / "requirements.txt", "six\n" + text)
    with pytest.raises(ConfigError, match=message) as info:
        Environment.from_pip_requirements("x", req)
    assert "requirements.txt:2" in str(info.value)


def test_missing_requirements_file(awkward_dir: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Environment.from_pip_requirements("x", awkward_dir / "nope.txt")


# conda files --------------------------------------------------------------------------------
CONDA = """\
name: training
channels:
  - conda-forge
dependencies:
  - python=3.10
  - pip
  - numpy=1.26
  - pip:
      - six==1.17.0
      - --extra-index-url https://extra/simple
variables:
  OMP_NUM_THREADS: 1
"""


def test_conda_file_python_version_pip_section_and_variables(awkward_dir: Path) -> None:
    env = Environment.from_conda_specification("c", write(awkward_dir / "env.yml", CONDA))
    deps = env.python.conda_dependencies
    assert deps.python_version == "3.10"
    assert deps.conda_packages == ["pip", "numpy=1.26"]
    assert deps.pip_packages == ["six==1.17.0"]
    assert deps.pip_options == ["--extra-index-url https://extra/simple"]
    assert deps.channels == ["conda-forge"]
    assert env.environment_variables == {"OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\ndependencies: [python=3.11\n", r"malformed YAML at line \d+, column \d+"),
        ("name: x\ndepndencies: [six]\n", "unknown key 'depndencies'; allowed keys: name"),
        ("- six\n", "must be a mapping"),
        ("dependencies:\n  - python>=3.10\n", "name one Python version"),
        ("dependencies:\n  - {conda: [x]}\n", "must be 'pip:' with a list"),
        ("dependencies:\n  - pip:\n    - --bogus\n", "unknown option '--bogus'"),
        ("dependencies: six\n", "'dependencies' must be a list"),
    ],
)
def test_bad_conda_files_fail_clearly(awkward_dir: Path, text: str, message: str) -> None:
    path = write(awkward_dir / "env.yml", text)
    with pytest.raises(ConfigError, match=message) as info:
        Environment.from_conda_specification("c", path)
    assert "env.yml" in str(info.value)


def test_missing_conda_file(awkward_dir: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Environment.from_conda_specification("c", awkward_dir / "nope.yml")


def test_conda_dependencies_serialize_round_trip(awkward_dir: Path) -> None:
    deps = CondaDependencies.create(
        pip_packages=["six==1.17.0"], conda_packages=["numpy=1.26"], python_version="3.11"
    )
    deps.add_pip_package("six==1.16.0")  # replaces the same project
    deps.add_conda_package("python=3.12")  # sets the version
    deps.add_channel("conda-forge")
    deps.set_pip_option("--pre")
    assert deps.pip_packages == ["six==1.16.0"]
    assert deps.python_version == "3.12"
    path = deps.save_to_file(awkward_dir)
    assert path.name == "conda_dependencies.yml"
    assert CondaDependencies(path) == deps
    assert CondaDependencies.from_yaml(deps.serialize_to_string()) == deps
    deps.remove_pip_package("six")
    assert deps.pip_packages == []


def test_conda_packages_map_to_pip_and_conda_only_ones_are_named() -> None:
    assert conda_to_pip("numpy=1.26") == "numpy==1.26.*"
    assert conda_to_pip("conda-forge::scikit-learn>=1.2") == "scikit-learn>=1.2"
    assert conda_to_pip("pytorch=2.1=py3.11_cpu") == "torch==2.1.*"
    assert conda_to_pip("pip") is None
    assert conda_only(["numpy", "cudatoolkit=11.8", "r-base", "mkl"]) == [
        "cudatoolkit=11.8",
        "r-base",
        "mkl",
    ]


# saved folders and dicts --------------------------------------------------------------------
def test_save_to_directory_and_load_back(awkward_dir: Path) -> None:
    env = Environment.from_conda_specification("c", write(awkward_dir / "env.yml", CONDA))
    env.environment_variables["SEED"] = "3"
    env.spark.packages.append(SparkPackage("g", "a", "1"))
    folder = awkward_dir / "saved"
    env.save_to_directory(folder)
    assert {p.name for p in folder.iterdir()} == {
        "azureml_environment.json",
        "conda_dependencies.yml",
    }
    loaded = Environment.load_from_directory(folder)
    assert loaded.to_dict() == env.to_dict()
    with pytest.raises(ConfigError, match="overwrite=True"):
        env.save_to_directory(folder)
    env.save_to_directory(folder, overwrite=True)


def test_load_from_directory_reads_the_reference_layout(awkward_dir: Path) -> None:
    folder = awkward_dir / "ref"
    folder.mkdir()
    (folder / "azureml_environment.json").write_text(
        json.dumps(
            {
                "name": "ref-env",
                "version": None,
                "environmentVariables": {"EXAMPLE_ENV_VAR": "EXAMPLE_VALUE"},
                "python": {"userManagedDependencies": False, "condaDependenciesFile": None},
                "docker": {"enabled": False, "baseImage": "img", "shmSize": "2g"},
                "spark": {"repositories": [], "packages": [], "precachePackages": True},
                "databricks": {},
                "r": None,
                "inferencingStackVersion": None,
            }
        )
    )
    write(
        folder / "conda_dependencies.yml", "dependencies:\n  - python=3.11\n  - pip:\n    - six\n"
    )
    env = Environment.load_from_directory(folder)
    assert env.name == "ref-env"
    assert env.python.conda_dependencies.pip_packages == ["six"]
    assert env.docker.base_image == "img"


def test_from_dict_refuses_unknown_keys() -> None:
    with pytest.raises(ConfigError, match="unknown key 'pyhton'"):
        Environment.from_dict({"name": "x", "pyhton": {}})
    with pytest.raises(ConfigError, match="unknown key 'pipPackage'"):
        Environment.from_dict({"python": {"condaDependencies": {"pipPackage": []}}})
    with pytest.raises(ConfigError, match="docker"):
        Environment.from_dict({"docker": {"enable": True}})


def test_clone_resets_the_version_and_copies_deeply() -> None:
    env = Environment("a", version=3)
    env.python.conda_dependencies.add_pip_package("six")
    clone = env.clone("b")
    clone.python.conda_dependencies.add_pip_package("idna")
    assert (clone.name, clone.version) == ("b", None)
    assert env.python.conda_dependencies.pip_packages == ["six"]


def test_default_environment_stays_user_managed() -> None:
    env = Environment("default-environment", _default=True)
    assert env.python.user_managed_dependencies
    assert Environment.from_dict(env.to_dict()).python.user_managed_dependencies
