"""``AmlCompute``: a managed, autoscaling Ray cluster, provisioned as the reference provisions one.

::

    config = AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=4,
                                                   idle_seconds_before_scaledown=120)
    cluster = ComputeTarget.create(ws, "cpu-cluster", config)
    cluster.wait_for_completion(show_output=True)
    run = Experiment(ws, "exp").submit(ScriptRunConfig("src", "train.py",
                                                       compute_target=cluster))

``ComputeTarget.create`` starts the cluster's Ray head on this machine with Ray's own autoscaler
(:mod:`ferry.targets.ray.autoscale`, :mod:`ferry.targets.ray.managed`): nodes start when runs
ask for them (a run gets whole nodes, one per node of a distributed run) and stop after
``idle_seconds_before_scaledown``; ``min_nodes`` stay up, never more than ``max_nodes``. The
nodes are processes of this machine, or — when the workspace declares an SSH pool
(``ferry target pool``) — Ray nodes that the autoscaler starts on the pool's hosts over SSH.
``vm_size`` names a node shape of :meth:`AmlCompute.supported_vmsizes`, or an Azure size, which
runs on the nearest shape (said in one line). Runs go through the Ray target, so snapshots,
environments, live logs and metrics behave as on any Ray cluster. Settings of the reference
that mean nothing here (virtual network, identity, admin user, public IP …) are accepted and
named in one line each.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ferry.compute import ComputeTarget, ComputeTargetRefusal, note
from ferry.compute_status import (
    AmlComputeNodeStateCounts,
    AmlComputeStatus,
    ScaleSettings,
    nodes_of,
    status_of,
)
from ferry.errors import ConfigError, TargetError

KIND = "amlcompute"


class AmlComputeConfigError(TargetError, ConfigError):
    """A provisioning configuration the reference refuses too (a ComputeTargetException)."""


def _ray_parts() -> Any:
    """The managed-cluster machinery (needs Ray: the hint says how to install it)."""
    try:
        from ferry.targets.ray import autoscale, managed
    except ImportError as exc:
        raise TargetError(
            f"AmlCompute clusters are Ray clusters and need {exc.name or 'ray'} — install it "
            "with: pip install 'ferry[ray]'"
        ) from exc
    return autoscale, managed


class AmlComputeProvisioningConfiguration:
    """What :meth:`AmlCompute.provisioning_configuration` returns (checked as the reference
    checks it)."""

    kind = KIND

    def __init__(
        self,
        vm_size: str = "",
        vm_priority: str = "dedicated",
        min_nodes: int = 0,
        max_nodes: int | None = None,
        idle_seconds_before_scaledown: int | None = 1800,
        admin_username: str | None = None,
        admin_user_password: str | None = None,
        admin_user_ssh_key: str | None = None,
        vnet_resourcegroup_name: str | None = None,
        vnet_name: str | None = None,
        subnet_name: str | None = None,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
        remote_login_port_public_access: str = "NotSpecified",
        identity_type: str | None = None,
        identity_id: list[str] | None = None,
        location: str | None = None,
        enable_node_public_ip: bool = True,
    ) -> None:
        self.vm_size = vm_size or ""
        self.vm_priority = vm_priority or "dedicated"
        self.scale_settings = ScaleSettings(
            int(min_nodes or 0), max_nodes, idle_seconds_before_scaledown or 1800
        )
        self.tags = dict(tags or {})
        self.description = description
        self.notes: list[str] = []
        if max_nodes is None:
            raise AmlComputeConfigError(
                "Invalid provisioning configuration, max nodes count is mandatory"
            )
        if not isinstance(max_nodes, int) or max_nodes < 0:
            raise AmlComputeConfigError(
                "Invalid provisioning configuration, max nodes count must be greater than or "
                "equal to 0"
            )
        if max_nodes < self.scale_settings.minimum_node_count:
            raise AmlComputeConfigError(
                "Invalid provisioning configuration, max nodes count must be greater than or "
                "equal to min nodes count"
            )
        if any((admin_user_password, admin_user_ssh_key)) and not admin_username:
            raise AmlComputeConfigError(
                "Invalid user credentials, admin username must be provided along with either a "
                "password or SSH key information."
            )
        vnet = (vnet_resourcegroup_name, vnet_name, subnet_name)
        if any(vnet) and not all(vnet):
            raise AmlComputeConfigError(
                "Invalid configuration, not all virtual net information provided. To use a "
                "custom virtual net, please provide vnet name, vnet resource group and subnet name"
            )
        meaningless = {
            "admin_username": (admin_username, "nodes run as the user who starts the cluster"),
            "vnet_name": (vnet_name, "nodes are this machine's or the declared pool's"),
            "identity_type": (identity_type, "ferry has no managed identities"),
            "location": (location, "the cluster runs where the workspace declares"),
            "remote_login_port_public_access": (
                remote_login_port_public_access != "NotSpecified" or None,
                "nodes open no login port of their own",
            ),
            "enable_node_public_ip": (
                not enable_node_public_ip or None,
                "nodes have the addresses of their machines",
            ),
        }
        for key, (value, why) in meaningless.items():
            if value:
                self.notes.append(f"AmlCompute {key} is accepted and means nothing here ({why})")
        if self.vm_priority.lower() == "lowpriority":
            self.notes.append(
                "AmlCompute vm_priority='lowpriority' is accepted; nodes here are never preempted"
            )

    def create_target(self, workspace: Any, name: str) -> AmlCompute:
        """Store the cluster and start its head (``ComputeTarget.create`` calls this)."""
        autoscale, managed = _ray_parts()
        from ferry.compute_settings import pool as declared_pool

        pool = declared_pool(Path(workspace.path))
        if pool is not None:
            shapes = autoscale.pool_shapes(pool.cpus, pool.memory_gb, pool.gpus)
        else:
            shapes = autoscale.machine_shapes(os.cpu_count() or 1, _memory_bytes())
        shape, shape_note = autoscale.shape_for(self.vm_size, shapes)
        notes = [*self.notes, *([shape_note] if shape_note else [])]
        for line in notes:
            note(line)
        scale = self.scale_settings
        settings = autoscale.ManagedSettings(
            cluster_name=f"ferry-{_short_hash(str(workspace.path))}-{name}",
            shape=shape,
            min_nodes=scale.minimum_node_count,
            max_nodes=int(scale.maximum_node_count or 0),
            idle_seconds_before_scaledown=int(scale.idle_seconds_before_scaledown or 1800),
            vm_size=self.vm_size,
            vm_priority=self.vm_priority,
            pool=pool,
            description=self.description,
            tags=self.tags,
            notes=tuple(notes),
            created_on=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        workspace.store.save_target(name, KIND, settings.to_dict())
        try:
            managed.ensure_running(Path(workspace.path), name, settings)
        except BaseException:
            workspace.store.delete_target(name)
            raise
        target = ComputeTarget(workspace, name)
        assert isinstance(target, AmlCompute)
        return target


def declared_pool(
    hosts: tuple[str, ...] | list[str],
    username: str,
    cpus: float,
    memory_gb: float,
    private_key_file: str = "",
    gpus: int = 0,
    ray_command: str = "ray",
) -> Any:
    """A pool declaration to give :func:`ferry.compute_settings.declare_pool`: SSH hosts alike
    (user, key, CPUs, memory, GPUs) with Ray installed (``ray_command``)."""
    autoscale, _ = _ray_parts()
    return autoscale.Pool(
        tuple(hosts), username, private_key_file, float(cpus), float(memory_gb), gpus, ray_command
    )


def _memory_bytes() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError):
        return 8 * 2**30


def _short_hash(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:8]


class AmlCompute(ComputeTarget):
    """A managed Ray cluster of the workspace (see the module docstring)."""

    _noun = "AmlCompute"
    #: the last status read (``refresh_state``/``get_status``), None before
    status: AmlComputeStatus | None = None

    @staticmethod
    def provisioning_configuration(
        vm_size: str = "",
        vm_priority: str = "dedicated",
        min_nodes: int = 0,
        max_nodes: int | None = None,
        idle_seconds_before_scaledown: int | None = 1800,
        admin_username: str | None = None,
        admin_user_password: str | None = None,
        admin_user_ssh_key: str | None = None,
        vnet_resourcegroup_name: str | None = None,
        vnet_name: str | None = None,
        subnet_name: str | None = None,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
        remote_login_port_public_access: str = "NotSpecified",
        identity_type: str | None = None,
        identity_id: list[str] | None = None,
        location: str | None = None,
        enable_node_public_ip: bool = True,
    ) -> AmlComputeProvisioningConfiguration:
        """The reference's signature (``max_nodes`` is mandatory, as there)."""
        return AmlComputeProvisioningConfiguration(
            vm_size, vm_priority, min_nodes, max_nodes, idle_seconds_before_scaledown,
            admin_username, admin_user_password, admin_user_ssh_key, vnet_resourcegroup_name,
            vnet_name, subnet_name, tags, description, remote_login_port_public_access,
            identity_type, identity_id, location, enable_node_public_ip,
        )  # fmt: skip

    @staticmethod
    def supported_vmsizes(workspace: Any, location: str | None = None) -> list[dict[str, Any]]:
        """The node shapes of the machines clusters start on: this machine's (1, 2, 4 … CPUs)
        or the declared pool's. Azure size names map to the nearest of them."""
        autoscale, _ = _ray_parts()
        from ferry.compute_settings import pool as declared_pool

        pool = declared_pool(Path(workspace.path))
        if pool is not None:
            shapes = autoscale.pool_shapes(pool.cpus, pool.memory_gb, pool.gpus)
        else:
            shapes = autoscale.machine_shapes(os.cpu_count() or 1, _memory_bytes())
        return [s.as_vm_size() for s in shapes]

    # the stored settings, as the reference's attributes ---------------------------------------
    def __init__(self, workspace: Any = None, name: str | None = None) -> None:
        super().__init__(workspace, name)
        if workspace is not None and name is not None:
            self.tags = dict(self.config.get("tags") or {})
            self.description = self.config.get("description")

    def refresh_state(self) -> None:
        """The stored settings and the cluster's status, read again (as the reference's)."""
        super().refresh_state()
        self.status = self._status()

    @property
    def settings(self) -> Any:
        autoscale, _ = _ray_parts()
        return autoscale.ManagedSettings.from_config(self.config)

    @property
    def vm_size(self) -> str:
        return str(self.config.get("vm_size") or self.config["shape"]["name"])

    @property
    def vm_priority(self) -> str:
        return str(self.config.get("vm_priority") or "dedicated")

    @property
    def scale_settings(self) -> ScaleSettings:
        c = self.config
        return ScaleSettings(
            int(c.get("min_nodes") or 0), int(c["max_nodes"]), c["idle_seconds_before_scaledown"]
        )

    def _folder(self) -> Path:
        _, managed = _ray_parts()
        folder: Path = managed.cluster_folder(Path(self.workspace.path), self.name)
        return folder

    def _report(self) -> Any:
        """The cluster's nodes now, or None when its head is not running."""
        _, managed = _ray_parts()
        state = managed.read_state(self._folder())
        if state is None or not managed.is_running(state):
            return None
        return managed.node_report(state.address)

    def _status(self) -> AmlComputeStatus:
        return status_of(self.config, self._report())

    # the reference's operations --------------------------------------------------------------
    def get_status(self) -> AmlComputeStatus:
        """Nodes up, starting, idle and running, and the scale settings."""
        self.refresh_state()
        assert self.status is not None
        return self.status

    def list_nodes(self) -> list[dict[str, Any]]:
        """Every node up: ``nodeId``, ``privateIpAddress``, ``port``, ``nodeState``
        (``idle`` or ``running``), as the reference lists them."""
        return nodes_of(self._report())

    def wait_for_completion(  # type: ignore[override]  # the reference's order of arguments
        self,
        show_output: bool = False,
        min_node_count: int | None = None,
        timeout_in_minutes: float = 20,
        is_delete_operation: bool = False,
    ) -> None:
        """Wait until the head runs (it is started again if it stopped) and ``min_node_count``
        (default: ``min_nodes``) nodes are up, or the time is over (said, not raised)."""
        if is_delete_operation:
            return
        _, managed = _ray_parts()
        managed.ensure_running(Path(self.workspace.path), self.name, self.settings)
        wanted = (
            self.scale_settings.minimum_node_count if min_node_count is None else min_node_count
        )
        if show_output:
            print("Succeeded", end="", flush=True)
        deadline = time.monotonic() + timeout_in_minutes * 60
        status = self.get_status()
        while status.current_node_count < wanted and time.monotonic() < deadline:
            if show_output:
                print(".", end="", flush=True)
            time.sleep(1.0)
            status = self.get_status()
        if show_output:
            print("\nAmlCompute wait for completion finished\n")
            if status.current_node_count >= wanted:
                print("Minimum number of nodes requested have been provisioned")
            else:
                print("Wait timeout has been reached")
                print(
                    f'Current provisioning state of AmlCompute is "Succeeded" and current node '
                    f'count is "{status.current_node_count}"'
                )

    def update(
        self,
        min_nodes: int | None = None,
        max_nodes: int | None = None,
        idle_seconds_before_scaledown: int | None = None,
    ) -> None:
        """New scale settings; a running cluster's autoscaler follows them within seconds."""
        if min_nodes is None and max_nodes is None and idle_seconds_before_scaledown is None:
            return
        autoscale, managed = _ray_parts()
        scale = self.scale_settings
        changed = {
            **self.config,
            "min_nodes": scale.minimum_node_count if min_nodes is None else min_nodes,
            "max_nodes": scale.maximum_node_count if max_nodes is None else max_nodes,
            "idle_seconds_before_scaledown": (
                scale.idle_seconds_before_scaledown
                if idle_seconds_before_scaledown is None
                else idle_seconds_before_scaledown
            ),
        }
        settings = autoscale.ManagedSettings.from_config(changed)
        self.workspace.store.save_target(self.name, KIND, settings.to_dict())
        managed.rewrite_cluster_file(Path(self.workspace.path), self.name, settings)
        self.refresh_state()

    def delete(self) -> None:
        """Stop the cluster (its head and every node) and remove it from the workspace."""
        _, managed = _ray_parts()
        managed.stop_cluster(Path(self.workspace.path), self.name, self.settings)
        self.workspace.store.delete_target(self.name)
        shutil.rmtree(self._folder(), ignore_errors=True)

    def detach(self) -> None:
        raise ComputeTargetRefusal(
            "Detach is not supported for AmlCompute object. Try to use delete instead."
        )

    def get_active_runs(self, **filters: Any) -> list[Any]:
        """The runs of the workspace on this cluster that have not ended (the reference's
        filters are accepted; ferry filters by this cluster and by status only)."""
        active = ("NotStarted", "Queued", "Preparing", "Provisioning", "Starting", "Running")
        return [
            run
            for experiment in self.workspace.experiments.values()
            for run in experiment.get_runs()
            if run.get_details().get("target") == self.name and run.get_status() in active
        ]

    def serialize(self) -> dict[str, Any]:
        data = super().serialize()
        data["properties"] = {
            "vmSize": self.vm_size,
            "vmPriority": self.vm_priority,
            "scaleSettings": self.scale_settings.serialize(),
        }
        return data


__all__ = [
    "AmlCompute",
    "AmlComputeNodeStateCounts",
    "AmlComputeProvisioningConfiguration",
    "AmlComputeStatus",
    "ScaleSettings",
]
