"""Estimator → ScriptRunConfig → stored definition → job: one parameter at a time, as the
reference maps it (``azureml-v1-data-models-estimators.md`` §1). Pure: no run is started."""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

import pytest
from estimator_helpers import definition, est, job

from ferry.environment import Environment
from ferry.errors import ConfigError
from ferry.estimator import Estimator, PyTorch

# the reference's signature, written out from the reference document (§1)
REFERENCE_PARAMETERS = [
    ("compute_target", None), ("vm_size", None), ("vm_priority", None), ("entry_script", None),
    ("script_params", None), ("node_count", 1), ("process_count_per_node", 1),
    ("distributed_backend", None), ("distributed_training", None), ("use_gpu", False),
    ("use_docker", True), ("custom_docker_base_image", None), ("custom_docker_image", None),
    ("image_registry_details", None), ("user_managed", False), ("conda_packages", None),
    ("pip_packages", None), ("conda_dependencies_file_path", None),
    ("pip_requirements_file_path", None), ("conda_dependencies_file", None),
    ("pip_requirements_file", None), ("environment_variables", None),
    ("environment_definition", None), ("inputs", None), ("source_directory_data_store", None),
    ("shm_size", None), ("resume_from", None), ("max_run_duration_seconds", None),
    ("_disable_validation", True), ("_show_lint_warnings", False),
    ("_show_package_warnings", False),
]  # fmt: skip


def test_the_constructor_is_the_references() -> None:
    params = list(inspect.signature(Estimator).parameters.values())
    assert params[0].name == "source_directory"
    assert params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert [(p.name, p.default) for p in params[1:]] == REFERENCE_PARAMETERS
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:])
    with pytest.raises(TypeError):
        Estimator("src", "local")  # type: ignore[misc]  # keyword-only, as the reference


def test_defaults_map_as_the_reference_and_take_the_fast_path() -> None:
    e = est()
    rc = e.run_config
    assert (rc.script, rc.arguments, rc.target) == ("train.py", [], "local")
    assert (rc.framework, rc.communicator, rc.node_count) == ("Python", "None", 1)
    assert rc.max_run_duration_seconds is None, "the ScriptRunConfig's 30-day default is not used"
    env = rc.environment
    assert env.python.user_managed_dependencies is False
    assert e.conda_dependencies.pip_packages == ["azureml-defaults"]
    assert (env.docker.enabled, env.docker.base_image) == (True, None), "use_docker=True"
    assert env.spec_hash() is None, "nothing beyond the defaults: nothing is built"
    spec = job(e)
    assert spec.environment.docker.enabled is False
    assert [n for n in spec.notes if "plain environment" in n] != []
    assert e.source_directory == "src" and e.use_gpu is False


def test_script_params_flatten_as_the_reference() -> None:
    given = {"--flag": "", "--lr": 0.1, "--none": None, "--list": [1, 2], "--zero": 0}
    e = est(script_params=given)
    expected = ["--flag", "--lr", 0.1, "--none", "--list", 1, 2, "--zero", 0]
    assert e.run_config.arguments == expected
    src = e._to_script_run_config()
    assert src.arguments == expected and src.script == "train.py"
    assert definition(e)["arguments"] == expected, "numbers stay numbers in the definition"
    assert job(e).command.arguments == ("--flag", "--lr", "0.1", "--none", "--list", "1", "2",
                                        "--zero", "0")  # fmt: skip
    assert e.script_params == given and e.script_params is not given
    assert est(script_params={"--alpha": 0.5, "--flag": None}).run_config.arguments == [
        "--alpha", 0.5, "--flag",
    ]  # fmt: skip
    assert est(script_params={"--out": Path("o u t")}).run_config.arguments == ["--out", "o u t"]


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (["--a", 1], "script_params must be a dict"),
        ({"--a": {"b": 1}}, r"script_params\['--a'\] is a dict"),
        ({1: "x"}, "keys must be non-empty strings"),
        ({"--a": [object()]}, r"script_params\['--a'\] is a object"),
    ],
)
def test_bad_script_params_are_refused(params: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        est(script_params=params)


def test_entry_script_is_required_and_a_script() -> None:
    with pytest.raises(ConfigError, match="entry_script is required"):
        est(entry_script=None)
    with pytest.raises(ConfigError, match="is a notebook"):
        est(entry_script="train.ipynb")
    assert Estimator("", entry_script="t.py", compute_target="local").source_directory == "."
    with pytest.raises(ConfigError, match="source_directory must be the path"):
        Estimator(3, entry_script="t.py", compute_target="local")  # type: ignore[arg-type]


def test_compute_target_as_the_reference() -> None:
    class Target:
        name = "cpu-cluster"

    assert est(compute_target=Target()).run_config.target == "cpu-cluster"
    with pytest.raises(ConfigError, match="Either compute target or VM size should be specified"):
        est(compute_target=None)
    with pytest.raises(ConfigError, match="vm_size='STANDARD_D2_V2' alone asks for a run-based"):
        est(compute_target=None, vm_size="STANDARD_D2_V2")
    with pytest.raises(ConfigError, match="vm_priority must be 'dedicated' or 'lowpriority'"):
        est(vm_priority="cheap")
    e = est(vm_size="STANDARD_D2_V2", vm_priority="lowpriority")
    assert definition(e)["amlcompute"]["vmSize"] == "STANDARD_D2_V2"
    assert definition(e)["amlcompute"]["vmPriority"] == "lowpriority"
    assert any(n.startswith("amlcompute=") and "is not used" in n for n in job(e).notes)


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "sr c"
    (src / "reqs").mkdir(parents=True)
    (src / "train.py").write_text("print('hi')\n")
    (src / "reqs" / "base.txt").write_text("six==1.17.0\n")
    (src / "requirements.txt").write_text(
        "--extra-index-url https://x.test/simple\n-r reqs/base.txt\nattrs==23.2.0\n"
    )
    (src / "env.yml").write_text(
        "name: p\ndependencies:\n  - python=3.10\n  - pip:\n    - attrs==23.2.0\n"
        "variables:\n  SEED: '7'\n"
    )
    return src


def test_package_arguments_build_the_references_dependencies(tmp_path: Path) -> None:
    src = _source(tmp_path)
    e = est(
        source_directory=src,
        pip_requirements_file="requirements.txt",
        pip_packages=["attrs==24.2.0", "packaging"],
        conda_packages=["numpy=1.26"],
    )
    deps = e.conda_dependencies
    assert deps.pip_packages == ["azureml-defaults", "six==1.17.0", "attrs==24.2.0", "packaging"]
    assert deps.pip_options == ["--extra-index-url https://x.test/simple"]
    assert deps.conda_packages == ["numpy=1.26"] and deps.python_version is None
    assert e.run_config.environment.spec_hash() is not None, "something to build"
    env = job(e).environment
    assert "azureml-defaults" in env.pip and env.conda == ("numpy=1.26",)
    conda = est(source_directory=src, conda_dependencies_file="env.yml")
    assert conda.conda_dependencies.python_version == "3.10"
    assert conda.conda_dependencies.pip_packages == ["attrs==23.2.0"], "the file alone"
    assert conda.run_config.environment.environment_variables == {"SEED": "7"}


def test_deprecated_file_aliases_still_work_with_the_references_warnings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = _source(tmp_path)
    with caplog.at_level(logging.WARNING, "ferry"):
        e = est(source_directory=src, pip_requirements_file_path="requirements.txt")
        c = est(source_directory=src, conda_dependencies_file_path="env.yml",
                conda_dependencies_file="env.yml")  # fmt: skip
    assert "six==1.17.0" in e.conda_dependencies.pip_packages
    assert c.conda_dependencies.python_version == "3.10"
    assert "'pip_requirements_file_path' parameter will be deprecated" in caplog.text
    assert "'conda_dependencies_file' will take precedence" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pip_requirements_file": "missing.txt"}, "pip_requirements_file: .*missing.txt"),
        ({"conda_dependencies_file": "missing.yml"}, "conda_dependencies_file: .*missing.yml"),
        ({"conda_dependencies_file": "env.yml", "pip_packages": ["six"]},
         r"conda_dependencies_file parameter is specified.*given: pip_packages"),
        ({"user_managed": True, "conda_packages": ["numpy"]}, "If user_managed is True"),
        ({"pip_packages": "six"}, "pip_packages must be a list of strings"),
        ({"conda_packages": [""]}, "conda_packages must hold non-empty strings"),
        ({"pip_packages": ["numpy=1.26"]}, "did you mean 'numpy==1.26'"),
        ({"use_docker": "yes"}, "use_docker must be True or False"),
        ({"use_docker": False, "custom_docker_image": "me/img:1"}, "use_docker=False does not"),
        ({"custom_docker_image": "a", "custom_docker_base_image": "b"},
         "Please use 'custom_docker_image' only"),
    ],
)  # fmt: skip
def test_conflicting_or_wrong_environment_arguments_are_refused(
    tmp_path: Path, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        est(source_directory=_source(tmp_path), **kwargs)


def test_user_managed_runs_with_the_targets_interpreter() -> None:
    e = est(user_managed=True)
    assert e.run_config.environment.python.user_managed_dependencies is True
    assert e.conda_dependencies.pip_packages == [] and e.run_config.environment.spec_hash() is None


CONFLICTING = {
    "pip_packages": ["six"], "pip_requirements_file": "r.txt", "conda_packages": ["numpy"],
    "conda_dependencies_file": "e.yml", "custom_docker_image": "me/img:1",
    "image_registry_details": object(), "use_gpu": True, "user_managed": True, "shm_size": "4g",
    "environment_variables": {"A": "1"},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CONFLICTING))
def test_environment_definition_refuses_each_environment_argument(name: str) -> None:
    with pytest.raises(ConfigError, match=rf"environment_definition parameter.*given: {name}\)"):
        est(environment_definition=Environment("mine"), **{name: CONFLICTING[name]})


def test_environment_definition_is_used_as_a_copy() -> None:
    mine = Environment("mine")
    mine.python.conda_dependencies.add_pip_package("six==1.17.0")
    mine.environment_variables["A"] = "1"
    e = est(environment_definition=mine, use_docker=True)
    env = e.run_config.environment
    assert env.to_dict() == mine.to_dict() and env is not mine
    assert env.docker.enabled is False, "docker settings are the environment's"
    env.environment_variables["B"] = "2"
    assert mine.environment_variables == {"A": "1"}
    torch = PyTorch("src", entry_script="t.py", compute_target="local", environment_definition=mine)
    assert torch.run_config.environment.environment_variables["NCCL_TREE_THRESHOLD"] == "0"
    assert "NCCL_TREE_THRESHOLD" not in mine.environment_variables, "the caller's is untouched"
    assert torch.conda_dependencies.pip_packages == ["six==1.17.0"], "no framework packages"
    with pytest.raises(ConfigError, match="environment_definition must be an Environment"):
        est(environment_definition={"name": "x"})


def test_docker_arguments_set_the_environments_docker_section(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert est(use_docker=False).run_config.environment.docker.enabled is False
    image = est(custom_docker_image="me/trainer:1")
    docker = image.run_config.environment.docker
    assert (docker.enabled, docker.base_image) == (True, "me/trainer:1")
    assert job(image).environment.docker.base_image == "me/trainer:1", "an explicit image stays"
    with caplog.at_level(logging.WARNING, "ferry"):
        old = est(custom_docker_base_image="me/old:1")
    assert old.run_config.environment.docker.base_image == "me/old:1"
    assert "'custom_docker_base_image' parameter will be deprecated" in caplog.text


def test_use_gpu_shm_size_and_registry_are_recorded_with_a_note(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "ferry"):
        e = est(use_gpu=True, shm_size="8g", image_registry_details=object())
    assert e.use_gpu is True and e.run_config.docker.shm_size == "8g"
    assert "use_gpu=True is recorded" in caplog.text
    assert "shm_size='8g' is a Docker setting" in caplog.text
    assert "image_registry_details is a Docker setting" in caplog.text
    with pytest.raises(ConfigError, match="use_gpu must be True or False"):
        est(use_gpu=1)


def test_environment_variables_are_the_jobs() -> None:
    e = est(environment_variables={"OMP_NUM_THREADS": 1, "EMPTY": None})
    assert e.run_config.environment_variables == {"OMP_NUM_THREADS": "1", "EMPTY": ""}
    assert dict(job(e).env_vars) == {"OMP_NUM_THREADS": "1", "EMPTY": ""}
    assert e.run_config.environment.environment_variables == {}, "not the environment's"
    for bad in (["A=1"], {"A=B": "1"}, {"A": [1]}):
        with pytest.raises(ConfigError, match="environment_variables"):
            est(environment_variables=bad)


def test_max_run_duration_seconds() -> None:
    e = est(max_run_duration_seconds=90)
    assert definition(e)["maxRunDurationSeconds"] == 90 and job(e).max_duration == 90
    for bad in (0, -5, 1.5, True, "60"):
        with pytest.raises(ConfigError, match="max_run_duration_seconds must be a positive"):
            est(max_run_duration_seconds=bad)


def test_inputs_and_datastore_are_recorded_and_noted() -> None:
    class Reference:
        data_reference_name = "mnist"

        def __str__(self) -> str:
            return "$AZUREML_DATAREFERENCE_mnist"

    e = est(inputs=[Reference(), "plain"], source_directory_data_store="workspaceblobstore")
    d = definition(e)
    assert d["dataReferences"] == {"mnist": "$AZUREML_DATAREFERENCE_mnist", "input_1": "plain"}
    assert d["sourceDirectoryDataStore"] == "workspaceblobstore"
    notes = job(e).notes
    assert any(n.startswith("dataReferences=") and "not mounted" in n for n in notes)
    assert any(n.startswith("sourceDirectoryDataStore=") for n in notes)
    with pytest.raises(ConfigError, match="inputs must be a list"):
        est(inputs="mnist")


def test_resume_from_is_passed_as_an_argument() -> None:
    e = est(script_params={"--epochs": 3}, resume_from="outputs/ckpt")
    assert e.run_config.arguments == ["--epochs", 3, "--resume-from", "outputs/ckpt"]
    assert e.script_params == {"--epochs": 3}
    with pytest.raises(ConfigError, match="resume_from must be a path"):
        est(resume_from=42)


def test_each_script_run_config_is_a_fresh_copy_and_overrides_merge() -> None:
    e = est(script_params={"--a": 1, "--b": 2}, inputs=["x"])
    first = e._to_script_run_config()
    first.run_config.environment.python.conda_dependencies.add_pip_package("six")
    first.arguments.append("--c")
    assert e.conda_dependencies.pip_packages == ["azureml-defaults"]
    again = e._to_script_run_config(script_params={"--b": 3, "--d": None}, inputs=["y"])
    assert again.arguments == ["--a", 1, "--b", 3, "--d"]
    assert again.run_config.data_references == {"input_0": "y"}
    assert e._to_script_run_config().arguments == ["--a", 1, "--b", 2]
    e.run_config.environment_variables["LIVE"] = "1"  # the reference's live run_config
    assert e._to_script_run_config().run_config.environment_variables == {"LIVE": "1"}


def test_unknown_submit_arguments_are_refused_before_anything_runs() -> None:
    with pytest.raises(ConfigError, match=r"\['compute_target'\] parameters cannot be overridden"):
        est()._ferry_submit(None, compute_target="other")  # type: ignore[arg-type]


def test_the_deprecation_warning_points_to_script_run_config(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "ferry"):
        est()
    assert "'Estimator' is deprecated. Please use 'ScriptRunConfig'" in caplog.text
