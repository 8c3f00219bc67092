"""A managed Ray cluster's shape and the cluster file Ray's own launcher and autoscaler read (pure).

``AmlCompute`` (:mod:`ferry.compute_aml`) is a Ray cluster that ferry starts and that Ray scales:
its head runs on this machine with no CPU of its own (runs never land there), and Ray's
autoscaler adds worker nodes when a run's placement group asks for them and removes them after
``idle_seconds_before_scaledown``. Ferry writes the cluster file; Ray does the scheduling:

- on this machine, Ray's ``fake_multinode`` provider (Ray's supported way to run its real
  autoscaler with nodes as local processes): each node is a raylet of the shape asked for;
- on a pool of SSH hosts declared once in the workspace, Ray's ``local`` provider with
  ``worker_ips``: the autoscaler's node updater runs ``ray start`` on a host over SSH when a
  node is needed, and drains it when it has been idle.

Example::

    shapes = machine_shapes(cpus=2, memory_bytes=24 * 2**30)
    shape, note = shape_for("STANDARD_D2_V2", shapes)     # local-2cpu, and no note
    cluster_file(ClusterPlan("ferry-x", shape, 0, 4, 120, gcs_port=6390))
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ferry.errors import ConfigError

KIND = "amlcompute"
GIB = 2**30
HEAD_TYPE = "ray.head.default"
#: the one worker type of Ray's local provider (its name is Ray's)
POOL_TYPE = "local.cluster.node"
#: memory a machine's node shape gets per CPU (and never more than 3/4 of the machine)
_GIB_PER_CPU = 4


@dataclass(frozen=True)
class NodeShape:
    """A machine shape nodes of the cluster have (the reference's "VM size")."""

    name: str
    cpus: float
    memory_gb: float
    gpus: int = 0

    def resources(self) -> dict[str, float]:
        """What one node offers Ray, and what one run asks of a node (a whole node per run,
        as on the reference's clusters)."""
        out = {"CPU": float(self.cpus)}
        if self.gpus:
            out["GPU"] = float(self.gpus)
        return out

    def as_vm_size(self) -> dict[str, Any]:
        """The reference's ``supported_vmsizes`` entry."""
        return {
            "name": self.name,
            "vCPUs": self.cpus,
            "gpus": self.gpus,
            "memoryGB": self.memory_gb,
            "maxResourceVolumeMB": 0,
        }

    def describe(self) -> str:
        gpus = f", {self.gpus} GPU(s)" if self.gpus else ""
        return f"{self.name} ({self.cpus:g} CPU(s), {self.memory_gb:g} GiB{gpus})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cpus": self.cpus,
            "memory_gb": self.memory_gb,
            "gpus": self.gpus,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeShape:
        return cls(
            str(data["name"]), float(data["cpus"]), float(data["memory_gb"]), int(data["gpus"])
        )


def machine_shapes(cpus: int, memory_bytes: int) -> list[NodeShape]:
    """The node shapes of a cluster on this machine: 1, 2, 4 … CPUs up to the machine's."""
    counts = sorted({c for c in (2**i for i in range(8)) if c <= cpus} | {max(1, cpus)})
    cap = memory_bytes * 0.75 / GIB
    return [
        NodeShape(f"local-{c}cpu", float(c), float(min(c * _GIB_PER_CPU, math.floor(cap))))
        for c in counts
    ]


def pool_shapes(cpus: float, memory_gb: float, gpus: int = 0) -> list[NodeShape]:
    """The one node shape of a pool: what its hosts declare (every host alike)."""
    return [NodeShape(f"pool-{cpus:g}cpu", float(cpus), float(memory_gb), int(gpus))]


# the reference's VM sizes ----------------------------------------------------------------------
#: vCPUs, memory (GiB), GPUs of the Azure sizes reference notebooks name most
_AZURE = {
    "standard_d1_v2": (1, 3.5, 0),
    "standard_d2_v2": (2, 7, 0),
    "standard_d3_v2": (4, 14, 0),
    "standard_d4_v2": (8, 28, 0),
    "standard_d5_v2": (16, 56, 0),
    "standard_d11_v2": (2, 14, 0),
    "standard_d12_v2": (4, 28, 0),
    "standard_d13_v2": (8, 56, 0),
    "standard_d14_v2": (16, 112, 0),
    "standard_ds1_v2": (1, 3.5, 0),
    "standard_ds2_v2": (2, 7, 0),
    "standard_ds3_v2": (4, 14, 0),
    "standard_ds4_v2": (8, 28, 0),
    "standard_ds5_v2": (16, 56, 0),
    "standard_ds11_v2": (2, 14, 0),
    "standard_ds12_v2": (4, 28, 0),
    "standard_nc6": (6, 56, 1),
    "standard_nc12": (12, 112, 2),
    "standard_nc24": (24, 224, 4),
    "standard_nv6": (6, 56, 1),
    "standard_nd6s": (6, 112, 1),
    "standard_a1_v2": (1, 2, 0),
    "standard_a2_v2": (2, 4, 0),
    "standard_a4_v2": (4, 8, 0),
    "standard_a8_v2": (8, 16, 0),
}
#: Standard_<family letters><vCPUs>[letters][_v<n>]: the number is the vCPU count
_AZURE_NAME = re.compile(r"^standard_([a-z]+?)(\d+)([a-z]*)(_v\d+)?(_promo)?$")
_GPU_FAMILIES = ("nc", "nd", "nv")


def azure_size(vm_size: str) -> tuple[float, float, int] | None:
    """vCPUs, memory (GiB) and GPUs of an Azure VM size name, or None if it is not one."""
    key = vm_size.strip().lower()
    if key in _AZURE:
        cpus, memory, gpus = _AZURE[key]
        return float(cpus), float(memory), gpus
    match = _AZURE_NAME.match(key)
    if not match:
        return None
    family, count = match.group(1), int(match.group(2))
    gpus = max(1, count // 6) if family in _GPU_FAMILIES else 0
    return float(count), float(count * _GIB_PER_CPU), gpus


def shape_for(vm_size: str, shapes: Sequence[NodeShape]) -> tuple[NodeShape, str | None]:
    """The node shape that stands for ``vm_size``, and a note when it differs from the size
    asked for (fewer CPUs, no GPU). '' is the smallest shape (the reference defaults to a
    size of its own). A name that is neither a shape here nor an Azure size is refused."""
    ordered = sorted(shapes, key=lambda s: (s.cpus, s.memory_gb))
    if not vm_size.strip():
        return ordered[0], None
    for shape in ordered:
        if shape.name.lower() == vm_size.strip().lower():
            return shape, None
    asked = azure_size(vm_size)
    if asked is None:
        names = ", ".join(s.name for s in ordered)
        raise ConfigError(
            f"vm_size {vm_size!r} is neither a node shape of this cluster's machines ({names}) "
            "nor an Azure VM size such as STANDARD_D2_V2; see AmlCompute.supported_vmsizes(ws)"
        )
    cpus, _memory, gpus = asked
    fitting = [s for s in ordered if s.cpus <= cpus]
    with_gpus = [s for s in fitting if s.gpus >= gpus] if gpus else fitting
    chosen = (with_gpus or fitting or ordered[:1])[-1]
    differences = []
    if chosen.cpus != cpus:
        differences.append(f"{cpus:g} vCPUs asked, {chosen.cpus:g} here")
    if gpus and chosen.gpus < gpus:
        differences.append(f"{gpus} GPU(s) asked, {chosen.gpus} here")
    if not differences:
        return chosen, None
    return chosen, (
        f"vm_size {vm_size!r} runs on nodes of shape {chosen.describe()}, the nearest these "
        f"machines have ({'; '.join(differences)})"
    )


# the cluster file ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pool:
    """SSH hosts declared once in the workspace, on which Ray's autoscaler starts nodes."""

    hosts: tuple[str, ...]
    username: str
    private_key_file: str
    cpus: float
    memory_gb: float
    gpus: int = 0
    #: the ``ray`` command on the hosts (a path when it is not on a login shell's PATH)
    ray_command: str = "ray"

    def to_dict(self) -> dict[str, Any]:
        return {
            "hosts": list(self.hosts),
            "username": self.username,
            "private_key_file": self.private_key_file,
            "cpus": self.cpus,
            "memory_gb": self.memory_gb,
            "gpus": self.gpus,
            "ray_command": self.ray_command,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pool:
        return cls(
            hosts=tuple(str(h) for h in data["hosts"]),
            username=str(data["username"]),
            private_key_file=str(data.get("private_key_file") or ""),
            cpus=float(data["cpus"]),
            memory_gb=float(data["memory_gb"]),
            gpus=int(data.get("gpus") or 0),
            ray_command=str(data.get("ray_command") or "ray"),
        )


@dataclass(frozen=True)
class ClusterPlan:
    """What ferry asks of Ray's autoscaler for one managed cluster."""

    cluster_name: str
    shape: NodeShape
    min_nodes: int
    max_nodes: int
    idle_seconds: float
    gcs_port: int
    head_ip: str = ""  # the head's address the pool's hosts reach (pool only)
    pool: Pool | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def cluster_file(plan: ClusterPlan) -> dict[str, Any]:
    """The complete cluster configuration (as ``ray up`` would have prepared it), for
    ``ray start --head --autoscaling-config``."""
    config: dict[str, Any] = {
        "cluster_name": plan.cluster_name,
        "max_workers": plan.max_nodes,
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": plan.idle_seconds / 60.0,
        "docker": {},
        "auth": {},
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
    }
    if plan.pool is None:
        config["provider"] = {
            "type": "fake_multinode",
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
            "gcs_address": f"127.0.0.1:{plan.gcs_port}",
        }
        config["head_node_type"] = HEAD_TYPE
        config["available_node_types"] = {
            HEAD_TYPE: {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
            plan.shape.name: {
                "resources": plan.shape.resources(),
                "node_config": {},
                "min_workers": plan.min_nodes,
                "max_workers": plan.max_nodes,
            },
        }
        return config
    pool = plan.pool
    config["provider"] = {
        "type": "local",
        "head_ip": plan.head_ip,
        "worker_ips": list(pool.hosts),
    }
    config["auth"] = {"ssh_user": pool.username}
    if pool.private_key_file:
        config["auth"]["ssh_private_key"] = pool.private_key_file
    # the address the host was reached at is the node's own (several hosts may be one machine)
    node_ip = "$(echo $SSH_CONNECTION | cut -d' ' -f3)"
    config["worker_start_ray_commands"] = [
        f"{pool.ray_command} start --address=$RAY_HEAD_IP:{plan.gcs_port} "
        f"--node-ip-address={node_ip} --num-cpus={pool.cpus:g} --num-gpus={pool.gpus} "
        "--dashboard-agent-listen-port=0 --disable-usage-stats"
    ]
    config["head_node_type"] = POOL_TYPE
    config["available_node_types"] = {
        POOL_TYPE: {
            "resources": plan.shape.resources(),
            "node_config": {},
            "min_workers": plan.min_nodes,
            "max_workers": min(plan.max_nodes, len(pool.hosts)),
        }
    }
    config["max_workers"] = min(plan.max_nodes, len(pool.hosts))
    return config


@dataclass(frozen=True)
class ManagedSettings:
    """What a managed cluster's target stores: the reference's settings and ferry's shape."""

    cluster_name: str
    shape: NodeShape
    min_nodes: int = 0
    max_nodes: int = 1
    idle_seconds_before_scaledown: int = 1800
    vm_size: str = ""
    vm_priority: str = "dedicated"
    pool: Pool | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    created_on: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster_name": self.cluster_name,
            "shape": self.shape.to_dict(),
            "min_nodes": self.min_nodes,
            "max_nodes": self.max_nodes,
            "idle_seconds_before_scaledown": self.idle_seconds_before_scaledown,
            "vm_size": self.vm_size,
            "vm_priority": self.vm_priority,
            "pool": self.pool.to_dict() if self.pool else None,
            "description": self.description,
            "tags": dict(self.tags),
            "notes": list(self.notes),
            "created_on": self.created_on,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ManagedSettings:
        try:
            settings = cls(
                cluster_name=str(config["cluster_name"]),
                shape=NodeShape.from_dict(dict(config["shape"])),
                min_nodes=int(config.get("min_nodes") or 0),
                max_nodes=int(config["max_nodes"]),
                idle_seconds_before_scaledown=int(
                    config.get("idle_seconds_before_scaledown") or 1800
                ),
                vm_size=str(config.get("vm_size") or ""),
                vm_priority=str(config.get("vm_priority") or "dedicated"),
                pool=Pool.from_dict(dict(config["pool"])) if config.get("pool") else None,
                description=config.get("description"),
                tags={str(k): str(v) for k, v in (config.get("tags") or {}).items()},
                notes=tuple(str(n) for n in config.get("notes") or ()),
                created_on=str(config.get("created_on") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"an amlcompute target's settings are incomplete or wrong ({exc!r}); create it "
                "with ComputeTarget.create(ws, name, AmlCompute.provisioning_configuration(…))"
            ) from None
        if not 0 <= settings.min_nodes <= settings.max_nodes:
            raise ConfigError(
                f"min_nodes={settings.min_nodes} and max_nodes={settings.max_nodes}: "
                "0 <= min_nodes <= max_nodes is needed"
            )
        if settings.idle_seconds_before_scaledown <= 0:
            raise ConfigError("idle_seconds_before_scaledown must be a positive number of seconds")
        return settings

    def plan(self, gcs_port: int, head_ip: str = "") -> ClusterPlan:
        """The cluster file's inputs for a head listening on ``gcs_port`` (and, for a pool,
        reached by its hosts at ``head_ip``)."""
        return ClusterPlan(
            cluster_name=self.cluster_name,
            shape=self.shape,
            min_nodes=self.min_nodes,
            max_nodes=self.max_nodes,
            idle_seconds=float(self.idle_seconds_before_scaledown),
            gcs_port=gcs_port,
            head_ip=head_ip,
            pool=self.pool,
        )
