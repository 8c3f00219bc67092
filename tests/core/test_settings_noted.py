"""No setting of the reference is accepted and silently ignored: it works, or a note says why not."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ferry import (
    DockerConfiguration,
    Environment,
    Experiment,
    RunConfiguration,
    ScriptRunConfig,
    Workspace,
)
from ferry.jobdef import ignored_settings
from ferry.tracking import RunQuery


def test_defaults_carry_no_note() -> None:
    assert ignored_settings(RunConfiguration().to_dict()) == []


@pytest.mark.parametrize(
    ("attribute", "value", "named"),
    [
        ("priority", 5, "priority"),
        ("credential_passthrough", True, "credentialPassthrough"),
        ("source_directory_data_store", "store", "sourceDirectoryDataStore"),
    ],
)
def test_a_setting_ferry_does_not_act_on_is_named(
    attribute: str, value: object, named: str
) -> None:
    rc = RunConfiguration()
    setattr(rc, attribute, value)
    notes = ignored_settings(rc.to_dict())
    assert len(notes) == 1 and notes[0].startswith(named)


def test_docker_runtime_config_reaches_the_run_configuration(
    workspace: Workspace, awkward_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``docker_runtime_config`` lands on ``run_config.docker`` as in the reference; with no
    image and no engine answering (no dockerd in these tests) the run is plain, said in its log."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    (awkward_dir / "t.py").write_text("print('hi')\n")
    config = ScriptRunConfig(
        str(awkward_dir), "t.py", docker_runtime_config=DockerConfiguration(use_docker=True)
    )
    assert config.run_config.docker.use_docker is True  # as the reference sets it
    run = Experiment(workspace, "noted").submit(config)
    assert run.wait_for_completion()["status"] == "Completed"
    log = (workspace.runs_dir / run.id / "user_logs" / "std_log.txt").read_text()
    assert "no Docker engine answers here: this run uses a plain environment" in log


def test_pip_version_is_pinned(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("six==1.17.0\n")
    env = Environment.from_pip_requirements("p", requirements, pip_version="24.0")
    assert "pip==24.0" in env.python.conda_dependencies.pip_packages


def test_watched_folders_and_output_collection_are_honoured(
    workspace: Workspace, awkward_dir: Path
) -> None:
    (awkward_dir / "t.py").write_text(
        "import os, time\nos.makedirs('tb/run1', exist_ok=True)\n"
        "open('tb/run1/events.txt', 'w').write('e1')\n"
        "os.makedirs('outputs', exist_ok=True)\nopen('outputs/m.txt', 'w').write('m')\n"
        "time.sleep(1.5)\n"
    )
    rc = RunConfiguration()
    rc.history.directories_to_watch = ["tb", "logs"]
    rc.history.output_collection = False
    run = Experiment(workspace, "watched").submit(
        ScriptRunConfig(str(awkward_dir), "t.py", run_config=rc)
    )
    assert run.wait_for_completion()["status"] == "Completed"
    names = run.get_file_names()
    assert "tb/run1/events.txt" in names  # mirrored from a watched folder
    assert not [n for n in names if n.startswith("outputs/")]  # output_collection=False
    log = (workspace.runs_dir / run.id / "user_logs" / "std_log.txt").read_text()
    assert "output_collection is False" in log


def test_a_watched_folder_outside_the_job_is_refused(
    workspace: Workspace, awkward_dir: Path
) -> None:
    from ferry.errors import ConfigError

    (awkward_dir / "t.py").write_text("print('hi')\n")
    rc = RunConfiguration()
    rc.history.directories_to_watch = ["../elsewhere"]
    started = time.time()
    with pytest.raises(ConfigError, match="inside the job's working folder"):
        Experiment(workspace, "refused").submit(
            ScriptRunConfig(str(awkward_dir), "t.py", run_config=rc)
        )
    assert [r for r in workspace.store.list_runs(RunQuery()) if r.created_at >= started] == []


def test_docker_by_habit_runs_plain_and_an_explicit_image_is_refused(
    workspace: Workspace, awkward_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reference's notebooks set env.docker.enabled by habit: without an image or a
    Dockerfile and without an engine, the run uses a plain environment, with a note; an explicit
    image without an engine is refused at submit (how to start one), before anything is written."""
    from ferry.envbuild.docker_engine import DockerUnavailable

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    (awkward_dir / "t.py").write_text("print('plain')\n")
    env = Environment("habit")
    env.docker.enabled = True
    run = Experiment(workspace, "habit").submit(
        ScriptRunConfig(str(awkward_dir), "t.py", environment=env)
    )
    assert run.wait_for_completion()["status"] == "Completed"
    log = (workspace.runs_dir / run.id / "user_logs" / "std_log.txt").read_text()
    assert "this run uses a plain environment" in log
    env.docker.base_image = "ubuntu:22.04"
    before = len(workspace.store.list_runs(RunQuery()))
    with pytest.raises(DockerUnavailable, match="no Docker engine answers"):
        Experiment(workspace, "habit").submit(
            ScriptRunConfig(str(awkward_dir), "t.py", environment=env)
        )
    assert len(workspace.store.list_runs(RunQuery())) == before
