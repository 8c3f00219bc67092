"""Docker runs on the local target: settings honoured, images built once, bad input named."""

from __future__ import annotations

import json
import socket
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import ferry_images

from ferry import Environment, Experiment, ScriptRunConfig, Workspace
from ferry.envbuild.docker_build import image_tag, lookup_image
from ferry.envbuild.docker_engine import DockerUnavailable, client
from ferry.envbuild.docker_spec import docker_hash
from ferry.runconfig import DockerConfiguration, PyTorchConfiguration
from ferry.tracking import RunQuery

REPORT = """
import json, os, resource, socket, sys
from ferry import Run
run = Run.get_context()
run.log("seen", 1)
os.makedirs("outputs", exist_ok=True)
open("outputs/made.txt", "w").write("x")
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as s:
    s.sendall(b"hello from the container")
shm = os.statvfs("/dev/shm")
print("REPORT " + json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "python": sys.executable,
    "shm": shm.f_blocks * shm.f_frsize, "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    "home": os.environ.get("HOME"), "host_only": os.environ.get("FERRY_TEST_HOST_ONLY"),
    "run_id": os.environ.get("FERRY_RUN_ID"), "cgroup": open("/proc/self/cgroup").read(),
    "six": __import__("six").__version__,
}))
"""


def _source(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.py").write_text(textwrap.dedent(body))
    return folder


def _log(ws: Workspace, run_id: str) -> str:
    return (ws.runs_dir / run_id / "user_logs" / "std_log.txt").read_text(encoding="utf-8")


def _report(log: str) -> dict[str, Any]:
    line = next(x for x in log.splitlines() if x.startswith("REPORT "))
    return dict(json.loads(line[len("REPORT ") :]))


def _six_env(name: str = "six-box") -> Environment:
    env = Environment(name)
    env.python.conda_dependencies.add_pip_package("six==1.17.0")
    return env


def _listener() -> tuple[int, list[bytes]]:
    server = socket.create_server(("127.0.0.1", 0))
    got: list[bytes] = []

    def accept() -> None:
        conn, _ = server.accept()
        with conn:
            got.append(conn.recv(100))
        server.close()

    threading.Thread(target=accept, daemon=True).start()
    return server.getsockname()[1], got


def test_a_docker_run_honours_its_settings_and_reports_like_a_plain_run(
    workspace: Workspace, awkward_dir: Path, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERRY_TEST_HOST_ONLY", "1")
    port, got = _listener()
    docker = DockerConfiguration(
        use_docker=True, shm_size="96m", arguments=["--ulimit", "nofile=512:512"]
    )
    config = ScriptRunConfig(
        str(_source(awkward_dir / "src", REPORT)), "job.py", arguments=[port],
        environment=_six_env(), docker_runtime_config=docker,
    )  # fmt: skip
    run = Experiment(workspace, "box").submit(config)
    details = run.wait_for_completion()
    log = _log(workspace, run.id)
    report = _report(log)
    import os

    assert (report["uid"], report["gid"]) == (os.getuid(), os.getgid()), "the submitting user"
    assert report["python"] == "/opt/ferry/venv/bin/python" and report["six"] == "1.17.0"
    assert report["shm"] == 96 * 1024 * 1024 and report["nofile"] == 512
    assert report["home"] == "/tmp" and report["host_only"] is None
    assert report["run_id"] == run.id and "docker" in report["cgroup"]
    assert got == [b"hello from the container"], "the host's network"
    assert run.get_metrics() == {"seen": 1}
    assert "outputs/made.txt" in run.get_file_names()
    assert details["properties"]["ferry.environment.hash"] == docker_hash(_six_env().to_spec()), (
        details["properties"]
    )
    assert list(workspace.envs_dir.glob("*/ferry-env.json")) == [], "nothing built on the host"
    leftovers = client().containers.list(
        all=True, sparse=True, filters={"label": f"ferry.run={run.id}"}
    )
    assert leftovers == []


def test_an_image_is_built_once_per_spec_and_found_in_milliseconds(
    workspace: Workspace, awkward_dir: Path, engine: Any
) -> None:
    body = "import six; print('SIX', six.__version__)\n"
    source = _source(awkward_dir / "src", body)
    docker = DockerConfiguration(use_docker=True)
    runs = [
        Experiment(workspace, "once").submit(
            ScriptRunConfig(
                str(source), "job.py", environment=_six_env(f"n{i}"), docker_runtime_config=docker
            )
        )
        for i in range(2)
    ]
    logs = [(_log(workspace, r.id) if r.wait_for_completion() else "") for r in runs]
    assert all("SIX 1.17.0" in log for log in logs)
    assert "reusing image" in logs[1], logs[1]
    spec = _six_env().to_spec()
    assert image_tag(docker_hash(spec)) in ferry_images(client())
    started = time.perf_counter()
    for _ in range(20):
        assert lookup_image(spec, engine.address) is not None
    assert (time.perf_counter() - started) / 20 < 0.05


def _failed(workspace: Workspace, config: ScriptRunConfig) -> dict[str, Any]:
    run = Experiment(workspace, "bad").submit(config)
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Failed", details
    return details


def test_a_failing_build_fails_the_run_with_its_error_and_publishes_nothing(
    workspace: Workspace, awkward_dir: Path, engine: Any
) -> None:
    env = Environment("broken")
    env.python.conda_dependencies.add_pip_package("ferry-no-such-package-xyz==0.0.1")
    source = _source(awkward_dir / "src", "print('never')\n")
    details = _failed(
        workspace,
        ScriptRunConfig(str(source), "job.py", environment=env,
                        docker_runtime_config=DockerConfiguration(use_docker=True)),
    )  # fmt: skip
    message = details["error"]["error"]["message"]
    assert "could not be built in its image" in message and "ferry-no-such-package" in message
    assert image_tag(docker_hash(env.to_spec())) not in ferry_images(client())
    assert client().containers.list(all=True, sparse=True, filters={"label": "ferry.build"}) == []


def test_a_failing_dockerfile_and_a_missing_image_are_named(
    workspace: Workspace, awkward_dir: Path, engine: Any
) -> None:
    from ferry.envbuild.docker_base import base_tag

    source = _source(awkward_dir / "src", "print('never')\n")
    dockerfile = Environment.from_dockerfile("df", f"FROM {base_tag()}\nRUN exit 3\n")
    details = _failed(workspace, ScriptRunConfig(str(source), "job.py", environment=dockerfile))
    assert "the Dockerfile failed to build" in details["error"]["error"]["message"]
    missing = Environment.from_docker_image("gone", "ferry-tests/no-such-image:1")
    details = _failed(workspace, ScriptRunConfig(str(source), "job.py", environment=missing))
    message = details["error"]["error"]["message"]
    assert "'ferry-tests/no-such-image:1' is not on the Docker engine" in message
    assert "leave env.docker.base_image unset" in message


def test_a_build_context_builds_from_its_files(
    workspace: Workspace, awkward_dir: Path, engine: Any
) -> None:
    from ferry.envbuild.docker_base import base_tag

    context = awkward_dir / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {base_tag()}\nCOPY data.txt /data.txt\n")
    (context / "data.txt").write_text("from the context")
    env = Environment.from_docker_build_context("ctx", context)
    source = _source(awkward_dir / "src", "print('DATA', open('/data.txt').read())\n")
    run = Experiment(workspace, "ctx").submit(
        ScriptRunConfig(str(source), "job.py", environment=env)
    )
    assert run.wait_for_completion()["status"] == "Completed"
    assert "DATA from the context" in _log(workspace, run.id)
    (context / "data.txt").write_text("edited")
    again = Experiment(workspace, "ctx").submit(
        ScriptRunConfig(str(source), "job.py", environment=env)
    )
    assert again.wait_for_completion()["status"] == "Completed", "its image: found by hash"
    client().images.remove(image_tag(docker_hash(env.to_spec())))  # a build is needed now
    details = _failed(workspace, ScriptRunConfig(str(source), "job.py", environment=env))
    assert "changed since its environment was created" in details["error"]["error"]["message"]


def test_an_engine_that_is_down_refuses_at_submit(
    workspace: Workspace, awkward_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{awkward_dir / 'no-engine.sock'}")
    source = _source(awkward_dir / "src", "print('never')\n")
    env = Environment.from_docker_image("boxed", "python:3.11-slim")  # an explicit image
    config = ScriptRunConfig(
        str(source),
        "job.py",
        environment=env,
        docker_runtime_config=DockerConfiguration(use_docker=True),
    )
    with pytest.raises(DockerUnavailable, match=r"no Docker engine answers.*start an engine"):
        Experiment(workspace, "down").submit(config)
    assert workspace.store.list_runs(RunQuery()) == []


def test_distributed_ranks_run_one_container_each(
    workspace: Workspace, awkward_dir: Path, engine: Any
) -> None:
    body = """
    import os, socket, time
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    box = [l for l in open("/proc/self/cgroup").read().split("/") if len(l.strip()) == 64][0]
    if rank == 0:  # a rendezvous over the host's network, as Gloo's store does
        server = socket.create_server((addr, port))
        boxes = {box.strip()}
        for _ in range(size - 1):
            conn, _ = server.accept()
            boxes.add(conn.recv(100).decode())
        print("CONTAINERS", len(boxes), "OF", size)
    else:
        deadline = time.time() + 30
        while True:
            try:
                with socket.create_connection((addr, port), timeout=2) as conn:
                    conn.sendall(box.strip().encode())
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
    """
    config = ScriptRunConfig(
        str(_source(awkward_dir / "src", body)), "job.py",
        distributed_job_config=PyTorchConfiguration(communication_backend="Gloo", process_count=2),
        docker_runtime_config=DockerConfiguration(use_docker=True),
    )  # fmt: skip
    run = Experiment(workspace, "ranks").submit(config)
    assert run.wait_for_completion()["status"] == "Completed"
    assert "CONTAINERS 2 OF 2" in _log(workspace, run.id)


def test_the_references_image_and_python_run_in_ferrys_default_base(
    workspace: Workspace, awkward_dir: Path, engine: Any
) -> None:
    env = Environment("ref38")
    env.docker.enabled = True
    env.docker.base_image = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:20251130.v1"
    env.python.conda_dependencies.set_python_version("3.8.13")  # the reference's default
    env.python.conda_dependencies.add_pip_package("six==1.17.0")
    body = "import sys, six; print('PY', sys.version_info[:2], six.__version__)\n"
    run = Experiment(workspace, "ref").submit(
        ScriptRunConfig(str(_source(awkward_dir / "src", body)), "job.py", environment=env)
    )
    assert run.wait_for_completion()["status"] == "Completed"
    log = _log(workspace, run.id)
    assert "ferry's default base image stands in" in log
    assert "PY (3, 8) 1.17.0" in log, log


def _silent_server() -> tuple[int, socket.socket]:
    """A package index that accepts connections and never answers: a build waits on it."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return server.getsockname()[1], server


def _cancel_when(ws: Workspace, run: Any, text: str) -> float:
    deadline = time.monotonic() + 120
    while text not in (_log(ws, run.id) if (ws.runs_dir / run.id / "user_logs").exists() else ""):
        assert time.monotonic() < deadline, f"no {text!r} in the log"
        time.sleep(0.1)
    run.cancel()
    asked = time.monotonic()
    assert run.wait_for_completion(raise_on_error=False)["status"] == "Canceled"
    return time.monotonic() - asked


def test_a_run_canceled_while_its_packages_install_stops_the_build_at_once(
    workspace: Workspace, awkward_dir: Path, engine: Any
) -> None:
    port, server = _silent_server()
    env = Environment("hangs")
    env.python.conda_dependencies.add_pip_package("ferry-never-answered==1.0")
    env.python.conda_dependencies.set_pip_option(f"--index-url http://127.0.0.1:{port}/simple")
    source = _source(awkward_dir / "src", "print('never')\n")
    run = Experiment(workspace, "cancel-build").submit(
        ScriptRunConfig(str(source), "job.py", environment=env,
                        docker_runtime_config=DockerConfiguration(use_docker=True)),
    )  # fmt: skip
    took = _cancel_when(workspace, run, "installing 1 package(s)")
    server.close()
    assert took < 15, (
        took,
        (workspace.runs_dir / run.id / "supervisor.log").read_text()[-3000:],
    )  # uv alone would wait 30 s for the silent index
    assert "the run was canceled" in _log(workspace, run.id)
    assert image_tag(docker_hash(env.to_spec())) not in ferry_images(client())
    assert client().containers.list(sparse=True, filters={"label": "ferry.build"}) == []


def test_a_run_canceled_while_its_dockerfile_builds_stops_the_build(
    workspace: Workspace, awkward_dir: Path, engine: Any
) -> None:
    from ferry.envbuild.docker_base import base_tag

    source = _source(awkward_dir / "src", "print('never')\n")
    env = Environment.from_dockerfile("slow", f"FROM {base_tag()}\nRUN echo step && sleep 120\n")
    run = Experiment(workspace, "cancel-build").submit(
        ScriptRunConfig(str(source), "job.py", environment=env)
    )
    took = _cancel_when(workspace, run, "step")
    assert took < 15, took


def test_a_container_that_outlives_its_killed_client_is_stopped(
    workspace: Workspace, awkward_dir: Path, engine: Any
) -> None:
    """The Docker client killed outright (not the container's own end): the watchdog stops the
    container through the engine and says so. (A client that reports its container's end is
    taken at its word: no engine request at the end of every run.)"""
    import os
    import signal

    from ferry.agent.proc import descendants

    body = """
    import time
    print("boxed", flush=True)
    time.sleep(120)
    """
    config = ScriptRunConfig(
        str(_source(awkward_dir / "src", body)),
        "job.py",
        docker_runtime_config=DockerConfiguration(use_docker=True),
    )
    run = Experiment(workspace, "outlived").submit(config)
    deadline = time.monotonic() + 120
    while "boxed" not in (
        _log(workspace, run.id) if run.run_dir.joinpath("user_logs").exists() else ""
    ):
        assert time.monotonic() < deadline and not run.record.status.is_terminal(), run.get_status()
        time.sleep(0.1)
    supervisor = run.record.supervisor_pid or 0
    clients = [
        pid
        for pid in descendants(supervisor)
        if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:2] == [b"run"]
    ]
    assert len(clients) == 1, clients
    os.kill(clients[0], signal.SIGKILL)
    details = run.wait_for_completion(raise_on_error=False, timeout_seconds=60)
    assert details["status"] == "Failed"
    assert "outlived its client; it is stopped" in _log(workspace, run.id)
    running = client(engine.address).containers.list(filters={"label": f"ferry.run={run.id}"})
    assert running == []
