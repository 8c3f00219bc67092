"""Docker runs on an SSH host (a real sshd on loopback, the host's engine): the conformance
suite, the host's settings, and an engine that is not there."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sshd
from docker_helpers import DockerConformanceEnv
from sshd import SshServer

from ferry import Environment, Experiment, ScriptRunConfig, Workspace
from ferry.compute import ComputeTarget, RemoteCompute
from ferry.runconfig import DockerConfiguration, PyTorchConfiguration
from ferry.testing.conformance import SCENARIOS, Scenario

ssh_server = sshd.ssh_server  # the fixtures, by name
remote_root = sshd.remote_root


def _attach(ws: Workspace, server: SshServer, root: Path, engine: str) -> None:
    config = server.attach_config(work_dir=str(root), docker_host=engine)
    ComputeTarget.attach(ws, "vm", RemoteCompute.attach_configuration(**config))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_ssh_docker_runs_pass_the_conformance_suite(  # type: ignore[no-untyped-def]
    scenario: Scenario, workspace, awkward_dir: Path, ssh_server: SshServer, remote_root: Path,
    engine: Any,
) -> None:  # fmt: skip
    _attach(workspace, ssh_server, remote_root, engine.address)
    scenario.run(DockerConformanceEnv(workspace, "vm", awkward_dir / "scratch"))


def test_a_docker_run_on_a_host_builds_there_and_runs_as_the_account(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, ssh_server: SshServer, remote_root: Path, engine: Any
) -> None:
    _attach(workspace, ssh_server, remote_root, engine.address)
    source = awkward_dir / "src"
    source.mkdir()
    (source / "job.py").write_text(
        "import json, os, sys, six\n"
        "print('REPORT', json.dumps([os.getuid(), sys.executable, six.__version__,\n"
        "      os.environ['RANK'], os.getcwd()]))\n"
    )
    env = Environment("six-box")
    env.python.conda_dependencies.add_pip_package("six==1.17.0")
    config = ScriptRunConfig(
        str(source), "job.py", compute_target="vm", environment=env,
        distributed_job_config=PyTorchConfiguration(communication_backend="Gloo", process_count=2),
        docker_runtime_config=DockerConfiguration(use_docker=True),
    )  # fmt: skip
    run = Experiment(workspace, "vmbox").submit(config)
    assert run.wait_for_completion()["status"] == "Completed"
    logs = workspace.runs_dir / run.id / "user_logs"
    reports = []
    for log in sorted(logs.glob("std_log*.txt")):
        line = next(x for x in log.read_text().splitlines() if x.startswith("REPORT"))
        reports.append(json.loads(line.split(" ", 1)[1]))
    import os

    assert sorted(r[3] for r in reports) == ["0", "1"], "one container per rank"
    for uid, python, six, _, cwd in reports:
        assert (uid, python, six) == (os.getuid(), "/opt/ferry/venv/bin/python", "1.17.0")
        assert cwd.startswith(str(remote_root)), "the host's run folder, mounted"


def test_a_host_without_an_engine_fails_before_anything_runs(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, ssh_server: SshServer, remote_root: Path
) -> None:
    _attach(workspace, ssh_server, remote_root, f"unix://{remote_root}/no-engine.sock")
    source = awkward_dir / "src"
    source.mkdir()
    (source / "job.py").write_text("print('ran')\n")
    explicit = ScriptRunConfig(
        str(source), "job.py", compute_target="vm",
        environment=Environment.from_docker_image("boxed", "python:3.11-slim"),
        docker_runtime_config=DockerConfiguration(use_docker=True),
    )  # fmt: skip
    run = Experiment(workspace, "noengine").submit(explicit)
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Failed"
    message = details["error"]["error"]["message"]
    assert "no Docker engine answers on this host" in message and "start one" in message
    assert "ran" not in (workspace.runs_dir / run.id / "user_logs" / "std_log.txt").read_text()
    # Docker by habit (no image) on a host without an engine: a plain run, said in its log
    habit = ScriptRunConfig(
        str(source), "job.py", compute_target="vm",
        docker_runtime_config=DockerConfiguration(use_docker=True),
    )  # fmt: skip
    run = Experiment(workspace, "noengine").submit(habit)
    assert run.wait_for_completion()["status"] == "Completed"
    log = (workspace.runs_dir / run.id / "user_logs" / "std_log.txt").read_text()
    assert "this run uses a plain environment" in log and "ran" in log
