"""Attaching Ray clusters and the cluster helpers: status, runs that can never fit, runs that wait,
environments built on the node, custom resources, and the run history after the cluster is gone.

One single-node test cluster (2 CPUs and a custom resource ``special``) serves the module; the
last test stops it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_ray_support import RayTestCluster, loopback_ray, ray_heartbeats, start_cluster

import ferry
from ferry.compute import ComputeTarget, RayCluster
from ferry.environment import Environment
from ferry.errors import ConfigError
from ferry.experiment import Experiment
from ferry.script_run_config import ScriptRunConfig
from ferry.targets.ray.cluster import (
    RaySettings,
    parse_size,
    placement_for,
    why_impossible,
    why_waiting,
)
from ferry.testing.conformance import wait_until

__all__ = ["loopback_ray", "ray_heartbeats"]


def _cli(*args: str, workspace: Path) -> subprocess.CompletedProcess[str]:
    """The real CLI in a fresh process (a Ray driver must not live in the test process)."""
    code = "import sys; from ferry.cli.main import main; main(sys.argv[1:])"
    return subprocess.run(
        [sys.executable, "-c", code, "--workspace", str(workspace), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


# ------------------------------------------------------------------------------------------------
# settings and attach (no cluster)


def test_ray_cluster_from_ferry_attaches_and_looks_up(workspace) -> None:  # type: ignore[no-untyped-def]
    config = ferry.RayCluster.attach_configuration(address="127.0.0.1:6379", num_cpus=2)
    ferry.ComputeTarget.attach(workspace, "ray-a", config)
    found = ferry.ComputeTarget(workspace, "ray-a")
    assert (found.type, found.config["address"]) == ("ray", "127.0.0.1:6379")
    assert "ray-a" in workspace.compute_targets


@pytest.mark.parametrize("address", ["auto", "127.0.0.1:6379", "ray://head.example:10001"])
def test_attach_configuration_accepts_the_three_address_forms(address: str) -> None:
    config = RayCluster.attach_configuration(address=address)
    assert config.kind == "ray"
    assert config.to_dict()["address"] == address


@pytest.mark.parametrize("address", ["", "head", "ray://head", "http://h:1", "h:99999"])
def test_a_bad_address_names_the_forms(address: str) -> None:
    with pytest.raises(ConfigError, match="ray://host:port"):
        RayCluster.attach_configuration(address=address)


def test_cli_values_are_converted_and_checked() -> None:
    settings = RaySettings.from_config(
        {"address": "auto", "num_cpus": "2", "memory": "1.5GiB", "resources": "special=1,b=0.5"}
    )
    assert settings.num_cpus == 2.0
    assert settings.memory == int(1.5 * 2**30)
    assert settings.resources == {"special": 1.0, "b": 0.5}
    assert settings.process_resources() == {
        "CPU": 2.0,
        "memory": float(int(1.5 * 2**30)),
        "special": 1.0,
        "b": 0.5,
    }
    assert RaySettings.from_config({"resources": '{"x": 2}'}).resources == {"x": 2.0}
    assert parse_size("512MB") == 512 * 1000**2 and parse_size(1024) == 1024
    with pytest.raises(ConfigError, match="unknown setting 'num_cpu'"):
        RaySettings.from_config({"num_cpu": 1})
    with pytest.raises(ConfigError, match="must be a number"):
        RaySettings.from_config({"num_gpus": "many"})
    with pytest.raises(ConfigError, match="not a size"):
        RaySettings.from_config({"memory": "lots"})


def test_attach_from_the_command_line(workspace) -> None:  # type: ignore[no-untyped-def]
    result = _cli(
        "target", "attach", "rc", "--type", "ray", "--address", "ray://head.example:10001",
        "--set", "num_gpus=1", "--set", "resources=special=2",
        workspace=workspace.path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    stored = ComputeTarget(workspace, "rc")
    assert stored.type == "ray"
    assert stored.config["address"] == "ray://head.example:10001"
    assert stored.config["num_gpus"] == 1.0 and stored.config["resources"] == {"special": 2.0}


def test_placement_that_can_never_fit_is_explained() -> None:
    settings = RaySettings(num_cpus=2)
    placement = placement_for(settings, node_count=2, processes_per_node=2)
    assert placement.strategy == "STRICT_SPREAD" and placement.bundles == [{"CPU": 4.0}] * 2
    nodes = [{"CPU": 4.0, "memory": 2.0**33}, {"CPU": 2.0}]
    reason = why_impossible(placement, nodes)
    assert reason is not None and "only 1 node(s)" in reason and "CPU 4" in reason
    assert why_impossible(placement, [{"CPU": 8.0}, {"CPU": 4.0}]) is None
    waiting = why_waiting(placement, [{"CPU": 1.0}, {"CPU": 0.0}])
    assert "free now: CPU 1; CPU 0" in waiting


def test_jobs_no_ray_cluster_can_run_are_refused_at_submit(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path
) -> None:
    from ferry.errors import TargetRefused
    from ferry.runconfig import PyTorchConfiguration
    from ferry.tracking import RunQuery

    ComputeTarget.attach(workspace, "rc", RayCluster.attach_configuration(address="auto"))
    source = awkward_dir / "refused"
    source.mkdir()
    (source / "job.py").write_text("print('x')")
    experiment = Experiment(workspace, "refused")
    nodes = ScriptRunConfig(str(source), "job.py", compute_target="rc")
    nodes.run_config.node_count = 2
    with pytest.raises(ConfigError, match="needs a distributed_job_config"):
        experiment.submit(nodes)
    odd = PyTorchConfiguration("Gloo", process_count=3, node_count=2)
    with pytest.raises(ConfigError, match="multiple of node_count"):
        experiment.submit(
            ScriptRunConfig(str(source), "job.py", compute_target="rc", distributed_job_config=odd)
        )
    docker = Environment("in-docker")
    docker.docker.enabled = True
    docker.docker.base_image = "ubuntu:22.04"  # an explicit image: a container is really asked for
    with pytest.raises(TargetRefused, match="Docker") as refused:
        experiment.submit(
            ScriptRunConfig(str(source), "job.py", compute_target="rc", environment=docker)
        )
    assert refused.value.target == "rc" and refused.value.run_id  # named, as every refusal
    assert workspace.store.list_runs(RunQuery()) == []


def test_without_ray_the_target_says_how_to_install_it(tmp_path: Path) -> None:
    """With ray hidden, attaching names the extra to install (importing the builder still
    works: it is plain data, see test_ssh_public_builders.py)."""
    hide = textwrap.dedent(
        """
        import sys
        class Hide:
            def find_spec(self, name, path=None, target=None):
                if name == "ray" or name.startswith("ray."):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        sys.meta_path.insert(0, Hide())
        """
    )
    attach = hide + textwrap.dedent(
        f"""
        from ferry.cli.main import main
        main(["--workspace", {str(tmp_path / "ws")!r}, "target", "attach", "rc", "--type", "ray",
              "--address", "auto"])
        """
    )
    result = subprocess.run([sys.executable, "-c", attach], capture_output=True, text=True)
    assert result.returncode != 0
    assert "pip install 'ferry[ray]'" in result.stdout + result.stderr
    imported = hide + "from ferry import RayCluster\nRayCluster.attach_configuration()\n"
    result = subprocess.run([sys.executable, "-c", imported], capture_output=True, text=True)
    assert result.returncode != 0 and "pip install 'ferry[ray]'" in result.stderr


# ------------------------------------------------------------------------------------------------
# against a cluster


@pytest.fixture(scope="module")
def cluster(loopback_ray: None) -> Iterator[RayTestCluster]:
    started = start_cluster([{"num_cpus": 2, "resources": {"special": 1}}], client_server=True)
    yield started
    started.stop()


def _attach(workspace, cluster: RayTestCluster, name: str = "ray", **settings: Any) -> None:  # type: ignore[no-untyped-def]
    config = RayCluster.attach_configuration(address=cluster.address, **settings)
    ComputeTarget.attach(workspace, name, config)


def _submit(workspace, source: Path, body: str, target: str, **kwargs: Any):  # type: ignore[no-untyped-def]
    source.mkdir(parents=True, exist_ok=True)
    (source / "job.py").write_text(textwrap.dedent(body), encoding="utf-8")
    src = ScriptRunConfig(str(source), "job.py", compute_target=target, **kwargs)
    return Experiment(workspace, "cluster").submit(src)


def test_status_shows_nodes_and_free_resources(workspace, cluster: RayTestCluster) -> None:  # type: ignore[no-untyped-def]
    _attach(workspace, cluster)
    result = _cli("target", "status", "ray", "--json", workspace=workspace.path)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["reachable"] is True and status["kind"] == "ray"
    assert len(status["nodes"]) == 1
    assert "127.0.0.1" in status["nodes"][0] and "special 1" in status["nodes"][0]
    assert "CPU 2" in status["free"]
    text = _cli("target", "status", "ray", workspace=workspace.path).stdout
    assert "nodes:" in text and "free: CPU 2" in text


def test_status_of_a_cluster_that_is_not_there(workspace) -> None:  # type: ignore[no-untyped-def]
    ComputeTarget.attach(
        workspace, "gone", RayCluster.attach_configuration(address="127.0.0.1:9", connect_timeout=2)
    )
    t = time.monotonic()
    status = RayCluster(workspace, "gone").get_status()
    assert status["reachable"] is False and "cannot reach" in status["error"]
    assert time.monotonic() - t < 10


def test_a_run_asking_for_more_than_the_cluster_has_fails_fast(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, cluster: RayTestCluster
) -> None:
    _attach(workspace, cluster, "huge", num_cpus=8)
    t = time.monotonic()
    run = _submit(workspace, awkward_dir / "huge", "print('never')", "huge")
    details = run.wait_for_completion(raise_on_error=False, timeout_seconds=60)
    assert details["status"] == "Failed"
    message = details["error"]["error"]["message"]
    assert "{CPU 8} on one node" in message and "can ever hold" in message, message
    assert "num_cpus" in message
    assert time.monotonic() - t < 30


def test_custom_resources_and_a_run_waiting_for_them(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, cluster: RayTestCluster
) -> None:
    """The only ``special`` resource is held by a first run; the second waits, saying why."""
    _attach(workspace, cluster, "special", resources={"special": 1})
    flag = awkward_dir / "release"
    holder = _submit(
        workspace,
        awkward_dir / "holder",
        f"""
        import os, time
        print("holding", flush=True)
        while not os.path.exists({str(flag)!r}):
            time.sleep(0.05)
        """,
        "special",
    )
    wait_until(lambda: holder.get_status() == "Running", timeout=60, what="the holder to run")
    waiter = _submit(workspace, awkward_dir / "waiter", "print('got it')", "special")
    log = waiter.run_dir / "user_logs" / "std_log.txt"
    wait_until(
        lambda: log.exists() and "waiting for cluster resources" in log.read_text(),
        timeout=60,
        what="the waiting reason in the log",
    )
    text = log.read_text()
    assert "special 1" in text and "free now:" in text, text
    wait_until(lambda: waiter.get_status() == "Queued", timeout=10, what="the waiter Queued")
    assert "waiting for cluster resources" in waiter.get_detailed_status()["details"]
    time.sleep(1.5)  # heartbeats go on while it waits
    assert waiter.get_status() == "Queued"
    flag.touch()
    assert holder.wait_for_completion()["status"] == "Completed"
    assert waiter.wait_for_completion(timeout_seconds=60)["status"] == "Completed"
    assert "got it" in log.read_text()


def test_cancel_while_waiting_for_resources(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, cluster: RayTestCluster
) -> None:
    _attach(workspace, cluster, "special", resources={"special": 1})
    flag = awkward_dir / "release"
    holder = _submit(
        workspace,
        awkward_dir / "holder",
        f"""
        import os, time
        while not os.path.exists({str(flag)!r}):
            time.sleep(0.05)
        """,
        "special",
    )
    wait_until(lambda: holder.get_status() == "Running", timeout=60, what="the holder to run")
    waiter = _submit(workspace, awkward_dir / "waiter", "print('never')", "special")
    log = waiter.run_dir / "user_logs" / "std_log.txt"
    wait_until(
        lambda: log.exists() and "waiting for cluster resources" in log.read_text(),
        timeout=60,
        what="the waiting reason",
    )
    assert waiter.cancel() is True
    assert waiter.wait_for_completion(raise_on_error=False)["status"] == "Canceled"
    flag.touch()
    assert holder.wait_for_completion()["status"] == "Completed"


def test_an_environment_is_built_on_the_node_once_and_reused(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, cluster: RayTestCluster, tmp_path: Path
) -> None:
    _attach(workspace, cluster, "ray", node_dir=str(tmp_path / "node dir"))
    env = Environment("built-on-node")
    env.python.user_managed_dependencies = False
    env.python.conda_dependencies.set_pip_option("--no-index")  # declares something to build
    body = "import sys; print('prefix', sys.prefix)"
    first = _submit(workspace, awkward_dir / "env", body, "ray", environment=env)
    details = first.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Completed", details
    envs = tmp_path / "node dir" / "envs"
    built = [p.name for p in envs.iterdir() if not p.name.startswith(".")]
    assert len(built) == 1
    log = Path(details["logFiles"]["user_logs/std_log.txt"]).read_text()
    assert f"prefix {envs / built[0]}" in log, log
    assert details["properties"]["ferry.environment.hash"] == built[0]
    # the node's hello says whether it has uv; the hash stands for the recipe actually used
    from ferry.envbuild.remote import remote_build_request

    hello = {"python": list(sys.version_info[:3]), "platform": f"linux-{os.uname().machine}"}
    uv_used = "building with" in log and "-m venv" not in log
    _, expected = remote_build_request(env.to_spec(), {**hello, "uv": uv_used}, "python", "")
    assert built[0] == expected, log
    second = _submit(workspace, awkward_dir / "env", body, "ray", environment=env)
    log2 = Path(second.wait_for_completion()["logFiles"]["user_logs/std_log.txt"]).read_text()
    assert f"prefix {envs / built[0]}" in log2 and "building" not in log2


def _ray_client_server_logs() -> list[str]:
    """The tails of the head's Ray Client server logs (why a session could not start)."""
    logs = Path(tempfile.gettempdir()) / "ray" / "session_latest" / "logs"
    return [
        f"--- {path.name}\n{path.read_text(errors='replace')[-1500:]}"
        for path in sorted(logs.glob("ray_client_server*.err"))
    ]


def test_a_run_through_ray_client(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, cluster: RayTestCluster
) -> None:
    """``ray://host:port``: the supervisor drives the cluster through Ray Client."""
    ComputeTarget.attach(
        workspace, "client", RayCluster.attach_configuration(address=cluster.client_address)
    )
    body = """
    import os
    from ferry import Run
    print("through the client", flush=True)
    Run.get_context().log("via", "client")
    os.makedirs("outputs", exist_ok=True)
    open("outputs/c.txt", "w").write("c")
    """
    run = _submit(workspace, awkward_dir / "client", body, "client")
    details = run.wait_for_completion(raise_on_error=False)
    supervisor_log = run.run_dir / "supervisor.log"
    assert details["status"] == "Completed", "\n".join(
        [
            str(details.get("error")),
            supervisor_log.read_text()[-3000:] if supervisor_log.exists() else "",
            *_ray_client_server_logs(),
        ]
    )
    log = Path(details["logFiles"]["user_logs/std_log.txt"]).read_text()
    assert "through the client" in log
    assert run.get_metrics() == {"via": "client"}
    assert "outputs/c.txt" in run.get_file_names()


def test_a_private_node_folder_per_user(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, cluster: RayTestCluster, tmp_path: Path
) -> None:
    """A node folder other users may enter is refused with how to fix it; the default one is
    made private in the node user's home."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    _attach(workspace, cluster, "open", node_dir=str(shared))
    run = _submit(workspace, awkward_dir / "open", "print('never')", "open")
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Failed"
    message = details["error"]["error"]["message"]
    assert "open to other users" in message and "chmod 700" in message, message
    assert details["error"]["error"]["code"] == "TargetRefused"
    _attach(workspace, cluster, "default")
    assert ComputeTarget(workspace, "default").config["node_dir"] == "~/.cache/ferry-ray"
    body = "import os; print('dir', os.environ['FERRY_RUN_DIR'])"
    details = _submit(workspace, awkward_dir / "dflt", body, "default").wait_for_completion()
    home = Path(os.path.expanduser("~/.cache/ferry-ray"))
    assert f"dir {home}/runs/" in Path(details["logFiles"]["user_logs/std_log.txt"]).read_text()
    assert home.stat().st_mode & 0o777 == 0o700


def test_run_settings_honoured_on_ray(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, cluster: RayTestCluster
) -> None:
    """history.directories_to_watch (mirrored live), output_collection=False and
    snapshot_project=False (the source is sent as it is, no snapshot kept)."""
    _attach(workspace, cluster)
    flag = awkward_dir / "go"
    body = f"""
    import os, time
    os.makedirs("tb events", exist_ok=True)
    open("tb events/e.1", "w").write("event one")
    os.makedirs("outputs", exist_ok=True)
    open("outputs/model.bin", "w").write("weights")
    while not os.path.exists({str(flag)!r}):
        time.sleep(0.02)
    """
    source = awkward_dir / "settings"
    source.mkdir()
    (source / "job.py").write_text(textwrap.dedent(body), encoding="utf-8")
    config = ScriptRunConfig(str(source), "job.py", compute_target="ray")
    config.run_config.history.directories_to_watch = ["tb events"]
    config.run_config.history.output_collection = False
    config.run_config.history.snapshot_project = False
    run = Experiment(workspace, "cluster").submit(config)
    try:
        wait_until(
            lambda: "tb events/e.1" in run.get_file_names(), timeout=60, what="a live mirror"
        )
        assert run.get_status() == "Running"
    finally:
        flag.touch()
    details = run.wait_for_completion()
    names = run.get_file_names()
    assert "tb events/e.1" in names and not any(n.startswith("outputs/") for n in names)
    log = Path(details["logFiles"]["user_logs/std_log.txt"]).read_text()
    assert "output_collection is False" in log and "snapshot_project is False" in log
    assert run.get_snapshot_id() is None


def test_the_history_stays_after_the_cluster_is_gone(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, cluster: RayTestCluster
) -> None:
    """Last in the module: it stops the cluster."""
    _attach(workspace, cluster)
    body = """
    import os
    from ferry import Run
    print("kept line", flush=True)
    Run.get_context().log("acc", 0.9)
    os.makedirs("outputs", exist_ok=True)
    open("outputs/model.txt", "w").write("weights")
    """
    run = _submit(workspace, awkward_dir / "kept", body, "ray")
    assert run.wait_for_completion()["status"] == "Completed"
    cluster.stop()
    again = workspace.get_run(run.id)
    details = again.get_details()
    assert details["status"] == "Completed"
    assert "kept line" in Path(details["logFiles"]["user_logs/std_log.txt"]).read_text()
    assert again.get_metrics() == {"acc": 0.9}
    assert "outputs/model.txt" in again.get_file_names()
    status = RayCluster(workspace, "ray").get_status()
    assert status["reachable"] is False


def test_a_head_that_answers_but_never_lets_the_driver_in_is_an_error(  # type: ignore[no-untyped-def]
    loopback_ray: None,
) -> None:
    """A port that accepts connections and says nothing: an error after 6 × connect_timeout."""
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        port = server.getsockname()[1]
        code = textwrap.dedent(
            f"""
            import os, time
            from ferry.errors import TargetError
            from ferry.targets.ray.cluster import RaySettings
            from ferry.targets.ray.connect import connect
            ticks = []
            t = time.monotonic()
            try:
                connect(RaySettings(address="127.0.0.1:{port}", connect_timeout=1), lambda: ticks.append(1))
            except TargetError as exc:
                print("error after", round(time.monotonic() - t), "s:", exc, "ticks", len(ticks), flush=True)
            os._exit(0)
            """
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=90
        )
    assert "did not let this driver in within 6 s" in result.stdout, result.stderr[-2000:]
    seconds = int(result.stdout.split("error after ")[1].split()[0])
    assert 5 <= seconds <= 20
    assert int(result.stdout.split("ticks ")[1]) > 5


def test_ray_client_tries_a_failed_session_start_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A loaded head's Ray Client proxy can fail to start a driver's session ("Initialization
    failure from server", after its own 30 s wait): ferry tries again, at least three times,
    however long the tries took. Simulated: such a head cannot be made to order here."""
    import ray

    from ferry.errors import TargetUnavailable
    from ferry.targets.ray import connect as connect_module
    from ferry.targets.ray.cluster import RaySettings

    calls: list[str] = []
    succeed_at = [3]

    def init(address: str, **_: object) -> None:
        calls.append(address)
        time.sleep(0.2)  # longer than the whole retry window: only the floor of tries is left
        if len(calls) < succeed_at[0]:
            raise ConnectionAbortedError("Initialization failure from server:\nTraceback ...")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(connect_module, "_check_port", lambda address, timeout: None)
    monkeypatch.setattr(connect_module, "_CLIENT_RETRY_PAUSE", 0.05)
    settings = RaySettings(address="ray://127.0.0.1:1", connect_timeout=0.05)
    connect_module.connect(settings)
    assert calls == ["ray://127.0.0.1:1"] * 3
    calls.clear()
    succeed_at[0] = 99
    with pytest.raises(TargetUnavailable, match="Initialization failure from server"):
        connect_module.connect(settings)
    assert len(calls) == 3
