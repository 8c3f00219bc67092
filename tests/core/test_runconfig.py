"""RunConfiguration / ScriptRunConfig: the reference's defaults, precedence and serialization."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from ferry import Environment, RunConfiguration, ScriptRunConfig
from ferry.errors import ConfigError
from ferry.runconfig import MpiConfiguration, PyTorchConfiguration

# azureml-v1.md §4, the serialized (camelCase) key order, written out from the reference document
REFERENCE_KEYS = [
    "script", "arguments", "target", "framework", "communicator", "maxRunDurationSeconds",
    "nodeCount", "priority", "environment", "history", "spark", "docker", "hdi", "tensorflow",
    "mpi", "pytorch", "paralleltask", "dataReferences", "data", "datacaches", "outputData",
    "sourceDirectoryDataStore", "amlcompute", "autoClusterComputeSpecification",
    "kubernetescompute", "credentialPassthrough", "command", "environmentVariables",
    "applicationEndpoints",
]  # fmt: skip


def test_defaults_follow_the_reference() -> None:
    rc = RunConfiguration()
    assert rc.target == "local" and rc.framework == "Python" and rc.communicator == "None"
    assert rc.node_count == 1 and rc.arguments == [] and rc.command == ""
    assert rc.history.snapshot_project and rc.history.directories_to_watch == ["logs"]
    assert rc.docker.shm_size == "2g" and rc.environment_variables == {}
    assert list(rc.to_dict()) == REFERENCE_KEYS


def test_every_reference_key_is_serialized_in_order_and_read_back() -> None:
    assert len(REFERENCE_KEYS) == 29
    rc = RunConfiguration(script="t.py", arguments=["--a", 1])
    d = rc.to_dict()
    assert list(d) == REFERENCE_KEYS
    assert list(RunConfiguration.from_dict(d).to_dict()) == REFERENCE_KEYS


def test_round_trip_through_dict() -> None:
    rc = RunConfiguration(script="train.py", arguments=["--a", 1, 0.5, True])
    rc.environment_variables["SEED"] = "7"
    rc.pytorch = PyTorchConfiguration(communication_backend="Gloo", node_count=2)
    again = RunConfiguration.from_dict(rc.to_dict())
    assert again.to_dict() == rc.to_dict()
    assert again.pytorch.communication_backend == "gloo"
    assert (
        RunConfiguration.from_dict(
            {"script": "x.py", "max_run_duration_seconds": 5}
        ).max_run_duration_seconds
        == 5
    )


def test_unknown_keys_name_the_allowed_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'scrpt'.*allowed keys: script"):
        RunConfiguration.from_dict({"scrpt": "x.py"})
    with pytest.raises(ConfigError, match=r"unknown key 'snapshot' in run configuration.history"):
        RunConfiguration.from_dict({"history": {"snapshot": False}})
    with pytest.raises(ConfigError, match="unknown framework"):
        RunConfiguration.from_dict({"framework": "jax"})
    with pytest.raises(ConfigError, match="use 'Nccl' or 'Gloo'"):
        PyTorchConfiguration(communication_backend="mpi")


def test_script_run_config_without_run_config(tmp_path: Path) -> None:
    env = Environment("e")
    env.python.user_managed_dependencies = True
    src = ScriptRunConfig(
        str(tmp_path),
        "train.py",
        arguments=["--x", 2],
        compute_target="gpu",
        environment=env,
        max_run_duration_seconds=60,
    )
    rc = src.run_config
    assert rc.target == "gpu" and rc.environment is env and rc.max_run_duration_seconds == 60
    assert rc.script == "train.py" and rc.arguments == ["--x", 2]
    assert ScriptRunConfig(str(tmp_path), "t.py").run_config.max_run_duration_seconds == 2_592_000


def test_given_run_config_wins_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rc = RunConfiguration(script="from_rc.py", arguments=["--rc"])
    rc.target = "cluster"
    with caplog.at_level(logging.WARNING, logger="ferry"):
        src = ScriptRunConfig(
            str(tmp_path), run_config=rc, compute_target="local", environment=Environment("x")
        )
    assert "ignored: compute_target, environment" in caplog.text
    assert src.run_config.target == "cluster"
    assert src.script == "from_rc.py" and src.arguments == ["--rc"]
    src2 = ScriptRunConfig(str(tmp_path), "mine.py", arguments=["--mine"], run_config=rc)
    assert src2.run_config.script == "mine.py" and src2.run_config.arguments == ["--mine"]
    assert rc.script == "from_rc.py"  # the caller's object is not modified


def test_distributed_configs_map_like_the_reference(tmp_path: Path) -> None:
    rc = ScriptRunConfig(
        str(tmp_path), "t.py", distributed_job_config=PyTorchConfiguration(node_count=2)
    ).run_config
    assert (rc.framework, rc.communicator, rc.node_count) == ("PyTorch", "nccl", 2)
    rc = ScriptRunConfig(
        str(tmp_path), "t.py", distributed_job_config=MpiConfiguration(node_count=3)
    ).run_config
    assert (rc.framework, rc.communicator, rc.node_count) == ("Python", "IntelMpi", 3)
    with pytest.raises(ConfigError, match="distributed_job_config must be"):
        ScriptRunConfig(str(tmp_path), "t.py", distributed_job_config="mpi")


def test_validate_script_location(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text("")
    (tmp_path / "outside.py").write_text("")
    assert (
        ScriptRunConfig(str(tmp_path / "src"), "train.py").validate()
        == (tmp_path / "src").resolve()
    )
    with pytest.raises(ConfigError, match="should be inside the project folder"):
        ScriptRunConfig(str(tmp_path / "src"), "../outside.py").validate()
    with pytest.raises(ConfigError, match="script path doesn't exist"):
        ScriptRunConfig(str(tmp_path / "src"), "missing.py").validate()
    with pytest.raises(ConfigError, match="does not exist or is not a folder"):
        ScriptRunConfig(str(tmp_path / "nope"), "train.py").validate()
    with pytest.raises(ConfigError, match="nothing to run"):
        ScriptRunConfig(str(tmp_path / "src")).validate()
    with pytest.raises(ConfigError, match="must be a list"):
        ScriptRunConfig(str(tmp_path / "src"), "train.py", arguments="--a 1")  # type: ignore[arg-type]


def test_default_environment_is_the_targets_own_interpreter() -> None:
    """The default is stored as the reference's "python" (the target's interpreter), never as
    the submitting process's path, which means nothing on another machine."""
    env = RunConfiguration().environment
    assert env.python.user_managed_dependencies is False  # the reference's default
    assert env.spec_hash() is None  # nothing declared: nothing to build (the fast path)
    assert env.python.interpreter_path == "python"
    assert sys.executable not in str(RunConfiguration().to_dict())
    assert env.to_spec().interpreter is None
