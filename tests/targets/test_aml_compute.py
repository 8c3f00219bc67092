"""AmlCompute on this machine: a managed Ray cluster that Ray's own autoscaler sizes.

One cluster serves the module (Ray and its autoscaler are slow on 2 cores); its idle time is
short, so nodes come and go within the tests. The last test deletes it and checks that every
process of it is gone. The first-log-line latencies of a cold cluster (a node must start) and a
warm one are printed (``-s``) and written to ``aml-latency.json`` in the module's folder.
"""

from __future__ import annotations

import json
import os
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_ray_support import ray_heartbeats

from ferry import ComputeTarget, Experiment, RemoteCompute, ScriptRunConfig
from ferry.compute_aml import AmlCompute, AmlComputeConfigError
from ferry.errors import ComputeTargetException, ConfigError, TargetNotFound
from ferry.targets.ray.autoscale import machine_shapes, shape_for
from ferry.targets.ray.managed import cluster_folder, is_running, read_state
from ferry.testing.conformance import wait_until

__all__ = ["ray_heartbeats"]

IDLE = 12  # idle_seconds_before_scaledown of the module's cluster
NAME = "cpu-cluster"

JOB = """
import os, sys, time
from azureml.core import Run
print("started on", os.uname().nodename, flush=True)
run = Run.get_context()
flag = sys.argv[1]
deadline = time.time() + 60
while sys.argv[1] != "-" and not os.path.exists(flag) and time.time() < deadline:
    time.sleep(0.05)
run.log("cpus", os.cpu_count())
"""


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from ferry.workspace import Workspace

    workspace = Workspace.create(tmp_path_factory.mktemp("aml") / "wörk 'ws' \"x\"")
    yield workspace
    workspace.store.close()


@pytest.fixture(scope="module")
def cluster(ws: Any) -> Iterator[AmlCompute]:
    config = AmlCompute.provisioning_configuration(
        vm_size="STANDARD_D2_V2", max_nodes=2, idle_seconds_before_scaledown=IDLE
    )
    created = ComputeTarget.create(ws, NAME, config)
    assert isinstance(created, AmlCompute)
    yield created
    try:
        AmlCompute(ws, NAME).delete()
    except TargetNotFound:
        pass


def _source(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.py").write_text(textwrap.dedent(JOB), encoding="utf-8")
    return folder


def _processes_naming(text: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if text.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            continue
    return found


def _first_line_after(ws: Any, run: Any, t0: float) -> float:
    log = ws.runs_dir / run.id / "user_logs" / "std_log.txt"

    def started() -> bool:
        return log.exists() and "started on" in log.read_text(encoding="utf-8", errors="replace")

    wait_until(started, timeout=120, what="the job's first line")
    return time.monotonic() - t0


# ------------------------------------------------------------------------------------------------
# no cluster


def test_provisioning_is_checked_as_the_reference_checks_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(ComputeTargetException, match="max nodes count is mandatory"):
        AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2")
    with pytest.raises(AmlComputeConfigError, match="greater than or equal to min nodes"):
        AmlCompute.provisioning_configuration(min_nodes=3, max_nodes=2)
    with pytest.raises(ConfigError, match="not all virtual net information"):
        AmlCompute.provisioning_configuration(max_nodes=2, vnet_name="v")
    config = AmlCompute.provisioning_configuration(
        max_nodes=2, vnet_resourcegroup_name="rg", vnet_name="v", subnet_name="s",
        identity_type="SystemAssigned", location="westeurope", admin_username="azureuser",
        admin_user_password="Secret-123", remote_login_port_public_access="Enabled",
        enable_node_public_ip=False, vm_priority="lowpriority",
    )  # fmt: skip
    assert config.scale_settings.serialize() == {
        "minNodeCount": 0, "maxNodeCount": 2, "nodeIdleTimeBeforeScaleDown": "PT1800S",
    }  # fmt: skip
    named = " ".join(config.notes)
    for option in ("vnet_name", "identity_type", "location", "admin_username", "public_ip"):
        assert option in named, named
    assert all("\n" not in n for n in config.notes)


def test_vm_sizes_are_this_machines_shapes_and_azure_names_map_to_them(ws: Any) -> None:
    sizes = AmlCompute.supported_vmsizes(ws)
    assert sizes and all(set(s) >= {"name", "vCPUs", "gpus", "memoryGB"} for s in sizes)
    assert max(s["vCPUs"] for s in sizes) <= (os.cpu_count() or 1)
    shapes = machine_shapes(cpus=2, memory_bytes=24 * 2**30)
    assert [(s.name, s.cpus, s.memory_gb) for s in shapes] == [
        ("local-1cpu", 1, 4), ("local-2cpu", 2, 8),
    ]  # fmt: skip
    assert shape_for("STANDARD_D2_V2", shapes) == (shapes[1], None)
    assert shape_for("", shapes)[0] == shapes[0]
    big, note = shape_for("Standard_NC6", shapes)
    assert big == shapes[1] and note and "1 GPU(s) asked" in note and "6 vCPUs asked" in note
    assert shape_for("Standard_F4s_v2", shapes)[0] == shapes[1]
    with pytest.raises(ConfigError, match="supported_vmsizes"):
        shape_for("a-fridge", shapes)


def test_a_missing_cluster_is_a_compute_target_exception(ws: Any) -> None:
    with pytest.raises(ComputeTargetException, match="ComputeTargetNotFound"):
        ComputeTarget(workspace=ws, name="nothing-here")
    with pytest.raises(ComputeTargetException, match="ComputeTargetNotFound"):
        AmlCompute(ws, "nothing-here")


# ------------------------------------------------------------------------------------------------
# one cluster


def test_the_cluster_is_found_as_the_reference_finds_it(  # type: ignore[no-untyped-def]
    ws, cluster: AmlCompute, capsys: pytest.CaptureFixture[str]
) -> None:
    found = ComputeTarget(workspace=ws, name=NAME)
    assert isinstance(found, AmlCompute) and found.provisioning_state == "Succeeded"
    assert isinstance(AmlCompute(ws, NAME), AmlCompute)
    with pytest.raises(ComputeTargetException, match="not a remote"):
        RemoteCompute(ws, NAME)
    with pytest.raises(ComputeTargetException, match="already exists"):
        ComputeTarget.create(ws, NAME, AmlCompute.provisioning_configuration(max_nodes=1))
    found.wait_for_completion(show_output=True)
    out = capsys.readouterr().out
    assert "Succeeded" in out and "Minimum number of nodes requested have been provisioned" in out
    status = found.get_status().serialize()
    assert status["provisioningState"] == "Succeeded" and status["vmSize"] == "STANDARD_D2_V2"
    assert status["scaleSettings"] == {
        "minNodeCount": 0, "maxNodeCount": 2, "nodeIdleTimeBeforeScaleDown": f"PT{IDLE}S",
    }  # fmt: skip
    again = ComputeTarget.deserialize(ws, json.loads(json.dumps(found.serialize())))
    assert isinstance(again, AmlCompute) and again.name == NAME
    assert again.scale_settings.maximum_node_count == 2
    with pytest.raises(ComputeTargetException, match="Detach is not supported"):
        found.detach()
    assert ws.compute_targets[NAME].type == "amlcompute"


def test_the_cli_shows_the_cluster(ws, cluster: AmlCompute, capsys) -> None:  # type: ignore[no-untyped-def]
    from ferry.cli.main import main

    def ferry_cli(*args: str) -> tuple[int, str]:
        try:
            main(["--workspace", str(ws.path), *args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    code, out = ferry_cli("target", "status", NAME, "--json")
    status = json.loads(out[out.index("{") :])
    assert code == 0 and status["kind"] == "amlcompute" and status["head"].startswith("running")
    assert status["shape"].startswith("local-2cpu") and status["nodes_min_max"] == "0..2"
    code, out = ferry_cli("target", "list", "--json")
    assert {t["name"]: t["type"] for t in json.loads(out)}[NAME] == "amlcompute"
    code, out = ferry_cli("target", "detach", NAME)
    assert code == 2 and "use delete instead" in out


def test_a_run_starts_a_node_that_stops_after_the_idle_time(  # type: ignore[no-untyped-def]
    ws, cluster: AmlCompute, tmp_path: Path
) -> None:
    wait_until(lambda: cluster.list_nodes() == [], timeout=IDLE + 30, what="no node up")
    source = _source(tmp_path / "src")
    flag = tmp_path / "release"
    exp = Experiment(ws, "aml")
    t0 = time.monotonic()
    run = exp.submit(ScriptRunConfig(str(source), "job.py", arguments=[str(flag)],
                                     compute_target=cluster))  # fmt: skip
    cold = _first_line_after(ws, run, t0)
    # node states are the autoscaler's view, refreshed every second or two
    wait_until(lambda: [n["nodeState"] for n in cluster.list_nodes()] == ["running"], timeout=15,
               what="one running node")  # fmt: skip
    status = cluster.get_status()
    assert status.current_node_count == 1 and status.node_state_counts.running_node_count == 1
    assert [r.id for r in cluster.get_active_runs()] == [run.id]
    flag.touch()
    assert run.wait_for_completion(timeout_seconds=120)["status"] == "Completed"
    assert run.get_metrics()["cpus"] == os.cpu_count()
    log = (ws.runs_dir / run.id / "user_logs" / "std_log.txt").read_text(encoding="utf-8")
    assert "Ray's autoscaler starts nodes" in log
    # warm: the node is still up (idle), the next run goes straight to it
    assert len(cluster.list_nodes()) == 1
    t0 = time.monotonic()
    warm_run = exp.submit(ScriptRunConfig(str(source), "job.py", arguments=["-"],
                                          compute_target=NAME))  # fmt: skip
    warm = _first_line_after(ws, warm_run, t0)
    assert warm_run.wait_for_completion(timeout_seconds=120)["status"] == "Completed"
    idle_from = time.monotonic()
    wait_until(lambda: cluster.list_nodes() == [], timeout=IDLE + 30, what="the idle node to stop")
    gone_after = time.monotonic() - idle_from
    assert gone_after >= IDLE - 3, (
        f"the node stopped after {gone_after:.1f} s, before its idle time"
    )
    assert cluster.get_status().current_node_count == 0
    numbers = {"cold_first_line_s": round(cold, 2), "warm_first_line_s": round(warm, 2),
               "idle_node_stopped_after_s": round(gone_after, 1)}  # fmt: skip
    (tmp_path.parent.parent / "aml-latency.json").write_text(json.dumps(numbers))
    print(f"\nAmlCompute on this machine: {numbers}")
    assert warm < cold


def test_update_makes_the_autoscaler_keep_min_nodes_up(ws, cluster: AmlCompute) -> None:  # type: ignore[no-untyped-def]
    cluster.update(min_nodes=1)
    assert AmlCompute(ws, NAME).scale_settings.minimum_node_count == 1
    cluster.wait_for_completion(min_node_count=1, timeout_in_minutes=1)
    assert [n["nodeState"] for n in cluster.list_nodes()] == ["idle"]
    cluster.update(min_nodes=0, idle_seconds_before_scaledown=IDLE)
    wait_until(lambda: cluster.list_nodes() == [], timeout=IDLE + 30, what="the node to go")


def test_a_stopped_head_is_started_again_by_the_next_run(  # type: ignore[no-untyped-def]
    ws, cluster: AmlCompute, tmp_path: Path
) -> None:
    """As after a reboot: the cluster's processes are gone, its definition is not."""
    from ferry.targets.ray.managed import stop_cluster

    assert stop_cluster(Path(ws.path), NAME, cluster.settings)
    status = cluster.get_status()
    assert not status.head_running and status.current_node_count == 0
    assert status.provisioning_state == "Succeeded"
    run = Experiment(ws, "aml").submit(
        ScriptRunConfig(str(_source(tmp_path / "src")), "job.py", arguments=["-"],
                        compute_target=NAME)
    )  # fmt: skip
    assert run.wait_for_completion(timeout_seconds=120)["status"] == "Completed"
    log = (ws.runs_dir / run.id / "user_logs" / "std_log.txt").read_text(encoding="utf-8")
    assert "starting the Ray head of cluster 'cpu-cluster'" in log
    assert cluster.get_status().head_running


def test_delete_stops_every_process_of_the_cluster(ws, cluster: AmlCompute) -> None:  # type: ignore[no-untyped-def]
    state = read_state(cluster_folder(Path(ws.path), NAME))
    assert state is not None and is_running(state)
    cluster.delete()
    assert not is_running(state)
    assert _processes_naming(state.cluster_file) == []
    with pytest.raises(ComputeTargetException, match="ComputeTargetNotFound"):
        AmlCompute(ws, NAME)
