"""The reference's compute API on attached targets, resource ids, and the CLI around them.

No cluster here (``test_aml_compute*.py`` start them): lookups that return the class of the
target's kind, the lifecycle calls an attached target answers, resource ids resolved through
the workspace's aliases, and ``ferry target alias|pool|sizes``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ferry import ComputeTarget, RayCluster, RemoteCompute, SparkCompute
from ferry.compute_settings import UndeclaredResource
from ferry.errors import ComputeTargetException, ConfigError

COMPAT = Path(__file__).resolve().parents[2] / "compat" / "azureml" / "src"
RID = "/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"


def _cli(workspace: Any, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    from ferry.cli.main import main

    try:
        main(["--workspace", str(workspace.path), *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out + out.err


def _attach_vm(workspace: Any, name: str = "vm") -> ComputeTarget:
    config = RemoteCompute.attach_configuration(username="me", address="10.1.2.3")
    return ComputeTarget.attach(workspace, name, config)


def test_compute_names_import_from_ferry_and_from_azureml_core_compute() -> None:
    code = """
import sys
import ferry
from ferry import AmlCompute, ComputeTarget, HDInsightCompute, RemoteCompute, SparkCompute
assert "ray" not in sys.modules and "asyncssh" not in sys.modules, "imported eagerly"
from azureml.core.compute import AmlCompute as A, ComputeTarget as C, HDInsightCompute as H
from azureml.core.compute import RemoteCompute as R
from azureml.core.compute.amlcompute import AmlComputeProvisioningConfiguration
from azureml.core.compute_target import ComputeTargetException
from azureml.exceptions import ComputeTargetException as E
assert (A, C, H, R) == (AmlCompute, ComputeTarget, HDInsightCompute, RemoteCompute)
assert ComputeTargetException is E is ferry.ComputeTargetException
assert {"AmlCompute", "HDInsightCompute"} <= set(ferry.__all__)
print("ok")
"""
    env = {**os.environ, "PYTHONPATH": str(COMPAT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_a_lookup_returns_the_class_of_the_targets_kind(workspace) -> None:  # type: ignore[no-untyped-def]
    _attach_vm(workspace)
    ComputeTarget.attach(workspace, "sp", SparkCompute.attach_configuration(master="local[1]"))
    ComputeTarget.attach(workspace, "rc", RayCluster.attach_configuration(address="h:6379"))
    assert type(ComputeTarget(workspace, "vm")) is RemoteCompute
    assert type(ComputeTarget(workspace=workspace, name="sp")) is SparkCompute
    assert type(ComputeTarget(workspace, "rc")) is RayCluster
    assert type(ComputeTarget(workspace, "local")) is ComputeTarget
    assert type(RemoteCompute(workspace=workspace, name="vm")) is RemoteCompute
    with pytest.raises(ComputeTargetException, match="is a ssh target, not a Spark one") as found:
        SparkCompute(workspace, "vm")
    assert isinstance(found.value, ConfigError)
    with pytest.raises(ComputeTargetException, match="ComputeTargetNotFound"):
        RemoteCompute(workspace=workspace, name="absent")
    assert {n: type(t).__name__ for n, t in workspace.compute_targets.items()} == {
        "local": "ComputeTarget", "vm": "RemoteCompute", "sp": "SparkCompute", "rc": "RayCluster",
    }  # fmt: skip


def test_an_attached_target_answers_the_reference_lifecycle_calls(  # type: ignore[no-untyped-def]
    workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    vm = _attach_vm(workspace)
    assert vm.provisioning_state == "Succeeded" and vm.provisioning_errors is None
    vm.wait_for_completion(show_output=True)
    assert 'Provisioning operation finished, operation "Succeeded"' in capsys.readouterr().out
    assert vm.get_status() == "Succeeded"
    with pytest.raises(ComputeTargetException, match="only AmlCompute clusters are updated"):
        vm.update(max_nodes=3)
    with pytest.raises(ComputeTargetException, match="use detach"):
        vm.delete()
    data = json.loads(json.dumps(vm.serialize()))
    assert {"id", "name", "type", "provisioning_state", "config"} <= set(data)
    again = ComputeTarget.deserialize(workspace, data)
    assert type(again) is RemoteCompute and again.config == vm.config
    with pytest.raises(ComputeTargetException, match="not a serialized compute target"):
        ComputeTarget.deserialize(workspace, {"name": "x"})
    with pytest.raises(ConfigError, match="provisioning configuration"):
        ComputeTarget.create(
            workspace, "other", RemoteCompute.attach_configuration(username="u", address="h")
        )
    vm.detach()
    assert set(workspace.compute_targets) == {"local"}


def test_a_machine_named_by_resource_id_gets_the_address_declared_once(  # type: ignore[no-untyped-def]
    workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    by_id = RemoteCompute.attach_configuration(username="me", resource_id=RID)
    by_parts = RemoteCompute.attach_configuration(
        username="me", subscription_id="sub-1", resource_group="rg", vm_name="vm1"
    )
    assert by_parts.to_dict()["resource_id"] == RID
    with pytest.raises(UndeclaredResource) as refused:
        ComputeTarget.attach(workspace, "vm", by_id)
    assert isinstance(refused.value, ComputeTargetException) and "ferry target alias" in str(
        refused.value
    )
    code, out = _cli(workspace, capsys, "target", "alias", RID, "10.9.8.7:2222")
    assert code == 0, out
    code, out = _cli(workspace, capsys, "target", "alias", "--json")
    assert json.loads(out) == {RID: "10.9.8.7:2222"}
    for name, config in (("vm", by_id), ("vm-parts", by_parts)):
        attached = ComputeTarget.attach(workspace, name, config)
        assert (attached.config["address"], attached.config["ssh_port"]) == ("10.9.8.7", 2222)
        assert attached.cluster_resource_id == RID
    with pytest.raises(ConfigError, match="address"):
        RemoteCompute.attach_configuration(username="me", vm_name="vm1")
    code, out = _cli(workspace, capsys, "target", "alias", "not-an-id", "h")
    assert code == 2 and "not an Azure resource id" in out and "Traceback" not in out
    code, out = _cli(workspace, capsys, "target", "alias", RID, "--remove")
    assert code == 0 and _cli(workspace, capsys, "target", "alias", "--json")[1].strip() == "{}"


def test_the_cli_declares_a_pool_and_lists_its_node_shape(  # type: ignore[no-untyped-def]
    workspace, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out = _cli(workspace, capsys, "target", "sizes", "--json")
    here = json.loads(out)
    assert code == 0 and here[0]["name"] == "local-1cpu"
    assert all(s["vCPUs"] <= (os.cpu_count() or 1) for s in here)
    key = tmp_path / "id_pool"
    key.write_text("not read here\n")
    code, out = _cli(
        workspace, capsys, "target", "pool", "--host", "10.0.0.5", "--host", "10.0.0.6",
        "--username", "ray", "--private-key-file", str(key), "--cpus", "8", "--memory-gb", "32",
    )  # fmt: skip
    assert code == 0, out
    code, out = _cli(workspace, capsys, "target", "pool", "--json")
    assert json.loads(out)["hosts"] == ["10.0.0.5", "10.0.0.6"]
    code, out = _cli(workspace, capsys, "target", "sizes", "--json")
    assert [s["name"] for s in json.loads(out)] == ["pool-8cpu"]
    code, out = _cli(workspace, capsys, "target", "pool", "--host", "h")
    assert code == 2 and "--username" in out
    code, out = _cli(workspace, capsys, "target", "pool", "--remove")
    assert code == 0 and json.loads(_cli(workspace, capsys, "target", "sizes", "--json")[1]) == here
    code, out = _cli(workspace, capsys, "target", "create", "c1")
    assert code == 2 and "--max-nodes" in out
