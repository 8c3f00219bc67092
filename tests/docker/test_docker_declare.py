"""Declaring Docker the reference's ways: constructors, precedence, warnings, hashes (no engine)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from ferry import Environment, ScriptRunConfig
from ferry.agent.container import run_argv
from ferry.envbuild.docker_context import context_archive, context_digest
from ferry.envbuild.docker_spec import docker_hash
from ferry.environment import ContainerRegistry, DockerBuildContext
from ferry.errors import ConfigError
from ferry.jobdef import environment_spec, job_spec
from ferry.runconfig import DockerConfiguration, PyTorchConfiguration, RunConfiguration

REFERENCE_CPU = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:20251130.v1"


def _job(config: ScriptRunConfig, tmp_path: Path):  # type: ignore[no-untyped-def]
    return job_spec(
        run_id="e_1_abcdef12",
        experiment="e",
        target="local",
        run_dir=tmp_path / "run",
        definition=config.to_dict(),
    )


def test_from_docker_image_runs_the_images_python_unless_packages_are_given(
    awkward_dir: Path,
) -> None:
    plain = Environment.from_docker_image("img", "python:3.11-slim")
    assert plain.docker.enabled and plain.docker.base_image == "python:3.11-slim"
    assert plain.python.user_managed_dependencies is True, "the image's own Python"
    requirements = awkward_dir / "requirements.txt"
    requirements.write_text("six==1.17.0\n")
    registry = ContainerRegistry("registry.example:5000", "me", "secret")
    built = Environment.from_docker_image(
        "img", "team/base:1", container_registry=registry, pip_requirements=requirements
    )
    spec = built.to_spec()
    assert spec.user_managed is False and spec.pip == ("six==1.17.0",)
    assert spec.docker.registry == "registry.example:5000" and spec.docker.registry_user == "me"
    assert "secret" not in str(built.to_dict()), "the password is never recorded"


def test_from_dockerfile_takes_a_file_or_its_text(awkward_dir: Path) -> None:
    text = "FROM debian:bookworm\nRUN echo hi\n"
    (awkward_dir / "Dockerfile").write_text(text)
    assert (
        Environment.from_dockerfile("a", awkward_dir / "Dockerfile").docker.base_dockerfile == text
    )
    assert Environment.from_dockerfile("b", text).docker.base_dockerfile == text
    with pytest.raises(ConfigError, match="neither an existing file nor a Dockerfile"):
        Environment.from_dockerfile("c", awkward_dir / "missing")


def test_a_build_context_is_digested_and_checked(awkward_dir: Path) -> None:
    context = awkward_dir / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY data.txt /\n")
    (context / "data.txt").write_text("one")
    env = Environment.from_docker_build_context("ctx", context)
    first = env.to_spec()
    assert env.python.user_managed_dependencies and first.docker.build_context is not None
    assert first.docker.build_context.digest == context_digest(context)
    (context / "data.txt").write_text("two")
    again = Environment.from_docker_build_context("ctx", DockerBuildContext(str(context)))
    assert docker_hash(again.to_spec()) != docker_hash(first), "contents are in the hash"
    with pytest.raises(ConfigError, match="changed since its environment was created"):
        context_archive(str(context), "Dockerfile", first.docker.build_context.digest)
    os.symlink("/etc/hostname", context / "link")
    with pytest.raises(ConfigError, match="outside it"):
        Environment.from_docker_build_context("ctx", context)
    (context / "link").unlink()
    with pytest.raises(ConfigError, match="outside the build context"):
        DockerBuildContext.from_local_directory(path=context, dockerfile_path="../Dockerfile")
    data = env.to_dict()
    data["docker"]["buildContext"]["dockerfilePath"] = "../../etc/Dockerfile"
    with pytest.raises(ConfigError, match="outside the build context"):
        environment_spec(data)


def test_the_image_sources_are_exclusive_and_sizes_checked() -> None:
    env = Environment("x")
    env.docker.base_image = "a:1"
    env.docker.base_dockerfile = "FROM a:1\n"
    with pytest.raises(ConfigError, match="exclusive"):
        env.to_spec()
    with pytest.raises(ConfigError, match="size Docker understands"):
        DockerConfiguration(use_docker=True, shm_size="lots")


def test_setting_moved_fields_warns_and_docker_configuration_wins(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "t.py").write_text("print(1)\n")
    env = Environment.from_docker_image("img", "python:3.11-slim")
    with caplog.at_level(logging.WARNING, logger="ferry"):
        env.docker.shm_size = "1g"
        env.docker.arguments = ["--ulimit", "nofile=100"]
    assert [r.message.split("'")[1] for r in caplog.records] == ["shm_size", "arguments"]
    alone = _job(ScriptRunConfig(str(tmp_path), "t.py", environment=env), tmp_path)
    assert alone.environment.docker.shm_size == "1g" and alone.notes == ()
    given = DockerConfiguration(use_docker=True, shm_size="3g", arguments=["--ulimit", "x=1"])
    both = _job(
        ScriptRunConfig(str(tmp_path), "t.py", environment=env, docker_runtime_config=given),
        tmp_path,
    )
    docker = both.environment.docker
    assert docker.enabled and docker.shm_size == "3g" and docker.arguments == ("--ulimit", "x=1")
    assert any("DockerConfiguration, whose settings are used" in n for n in both.notes)


def test_docker_without_an_image_is_by_habit_and_the_reference_image_is_the_default(
    tmp_path: Path,
) -> None:
    (tmp_path / "t.py").write_text("print(1)\n")
    rc = RunConfiguration(script="t.py")
    rc.docker.use_docker = True
    job = _job(ScriptRunConfig(str(tmp_path), run_config=rc), tmp_path)
    assert job.environment.docker.by_habit and not job.environment.docker.enabled
    assert any("ferry's default base image" in n for n in job.notes)
    none = Environment("d")
    reference = Environment("d")
    reference.docker.base_image = REFERENCE_CPU
    assert docker_hash(none.to_spec()) == docker_hash(reference.to_spec())


def test_the_hash_covers_what_is_installed_not_how_it_runs() -> None:
    env = Environment.from_docker_image("a", "python:3.11-slim")
    digest = docker_hash(env.to_spec())
    env.docker._shm_size, env.docker._arguments = "8g", ["--ulimit", "nofile=9"]
    env.environment_variables["X"] = "1"
    assert docker_hash(env.to_spec()) == digest
    env.docker.base_image = "python:3.12-slim"
    assert docker_hash(env.to_spec()) != digest
    packaged = Environment.from_docker_image("a", "python:3.11-slim")
    packaged.python.user_managed_dependencies = False
    packaged.python.conda_dependencies.add_pip_package("six==1.17.0")
    assert docker_hash(packaged.to_spec()) != digest
    assert Environment.from_dict(packaged.to_dict()).to_dict() == packaged.to_dict()


def test_a_ranks_command_line_passes_values_by_name_and_mounts_any_path() -> None:
    odd = "/tmp/wörk space 'q' \"dq\", comma"
    argv = run_argv(
        {"image": "ferry-env:1", "name": "ferry-r-0", "user": "1000:1000", "workdir": odd,
         "mounts": [[odd, False]], "env_names": ["SECRET"], "shm_size": "64m",
         "arguments": ["--ulimit", "nofile=512"], "command": ["python", "t.py"]}
    )  # fmt: skip
    assert argv[:4] == ["docker", "run", "--rm", "--init"]
    assert argv[argv.index("--user") : argv.index("--user") + 2] == ["--user", "1000:1000"]
    assert "--network" in argv and argv[argv.index("--network") + 1] == "host"
    assert argv[argv.index("--env") + 1] == "TINI_SUBREAPER=1" and "SECRET" in argv
    mount = argv[argv.index("--mount") + 1]
    assert mount.startswith('type=bind,"source=/tmp/wörk space') and '""dq""' in mount
    assert argv[-3:] == ["ferry-env:1", "python", "t.py"]


def test_gpus_are_asked_for_by_nccl_or_a_gpu_image(tmp_path: Path) -> None:
    from ferry.targets.container import ContainerPlan, gpu_note, rank_launch, wants_gpus

    (tmp_path / "t.py").write_text("print(1)\n")
    nccl = _job(
        ScriptRunConfig(
            str(tmp_path), "t.py",
            distributed_job_config=PyTorchConfiguration(process_count=2),  # Nccl by default
            docker_runtime_config=DockerConfiguration(use_docker=True),
        ),
        tmp_path,
    )  # fmt: skip
    plain = _job(
        ScriptRunConfig(
            str(tmp_path), "t.py", docker_runtime_config=DockerConfiguration(use_docker=True)
        ),
        tmp_path,
    )
    assert wants_gpus(nccl) and not wants_gpus(plain)
    assert gpu_note(nccl, present=False) is not None and gpu_note(nccl, present=True) is None

    def plan(gpus: bool) -> ContainerPlan:
        return ContainerPlan("i", "unix:///e", ["python"], {}, [], "/w", "1:1", gpus, {})

    assert "--gpus" in rank_launch(nccl, plan(gpus=True), rank=0).argv
    assert "--gpus" not in rank_launch(plain, plan(gpus=False), rank=0).argv
