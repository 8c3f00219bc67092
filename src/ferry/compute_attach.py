"""The reference's attach configurations: :class:`RemoteCompute` (SSH), :class:`SparkCompute`,
:class:`RayCluster` — plain data, re-exported by :mod:`ferry.compute`.

Importing them costs nothing (no asyncssh, ray or pyspark); each kind checks its settings in its
own target module, loaded when a configuration is made. A machine the reference names by Azure
resource id gets its address from the workspace when it is attached (:mod:`ferry.compute_settings`).

Example::

    config = RemoteCompute.attach_configuration(username="me", address="10.0.0.4")
    ComputeTarget.attach(ws, "vm", config)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ferry.compute import ComputeTarget
from ferry.errors import ConfigError, TargetError
from ferry.targets.registry import target_class

# ------------------------------------------------------------------------------------------------
# the reference's configuration builders (plain data; each kind checks its settings lazily)

#: kind -> (module, function checking a configuration dict, extra that brings its libraries)
_CHECKS = {
    "ssh": ("ferry.targets.ssh.settings", "attach_settings", "ssh"),
    "spark": ("ferry.targets.spark.config", "validate_config", "spark"),
    "ray": ("ferry.targets.ray.cluster", "validate_config", "ray"),
}


def _checker(kind: str) -> Callable[..., dict[str, Any]]:
    """The kind's own check of a configuration, imported now (its libraries are not)."""
    module_name, name, extra = _CHECKS[kind]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TargetError(
            f"the {kind} target needs {exc.name or 'a missing library'} — install it with: "
            f"pip install 'ferry[{extra}]'"
        ) from exc
    check: Callable[..., dict[str, Any]] = getattr(module, name)
    return check


@dataclass(frozen=True)
class RemoteAttachConfiguration:
    """An ssh attach configuration (see :meth:`RemoteCompute.attach_configuration`); it never
    holds a password or a passphrase."""

    config: dict[str, Any]
    kind: str = "ssh"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.config)

    def __repr__(self) -> str:
        return f"RemoteCompute.attach_configuration({self.config})"


class RemoteCompute(ComputeTarget):
    """A machine reached over SSH, as the reference's ``RemoteCompute``.

    Example::

        config = RemoteCompute.attach_configuration(username="me", address="vm.example.org")
        ComputeTarget.attach(ws, "vm", config)
        RemoteCompute(ws, "vm").config["address"]     # 'vm.example.org'
    """

    _noun = "remote (ssh)"

    @staticmethod
    def attach_configuration(
        username: str,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        vm_name: str | None = None,
        resource_id: str | None = None,
        address: str | None = None,
        ssh_port: int = 22,
        password: str = "",
        private_key_file: str = "",
        private_key_passphrase: str = "",
        **settings: Any,
    ) -> RemoteAttachConfiguration:
        """The reference's signature; ferry's own settings (``work_dir`` …) as keywords. A
        password or passphrase is never kept: give it at run time (the warning says how). A
        machine named by resource id (or subscription, group and VM name) gets its address
        from the workspace when attached (``ferry target alias RESOURCE_ID HOST``)."""
        rid = reference_resource(
            "ssh", address, resource_id, subscription_id, resource_group, vm_name
        )
        config: dict[str, Any] = {
            "username": username,
            "address": address,
            "ssh_port": ssh_port,
            "private_key_file": private_key_file,
            "subscription_id": subscription_id,
            "resource_group": resource_group,
            "vm_name": vm_name,
            "resource_id": rid,
            **settings,
        }
        config = {k: v for k, v in config.items() if v is not None}
        if address is None:  # checked at attach, once the workspace gave the address
            config["password_from_env"] = bool(password) or None
            config["passphrase_from_env"] = bool(private_key_passphrase) or None
            return RemoteAttachConfiguration({k: v for k, v in config.items() if v is not None})
        checked = _checker("ssh")(
            config, password=bool(password), passphrase=bool(private_key_passphrase)
        )
        return RemoteAttachConfiguration(checked)


def reference_resource(
    kind: str,
    address: str | None,
    resource_id: str | None,
    subscription_id: str | None,
    resource_group: str | None,
    name: str | None,
) -> str | None:
    """The resource id an attach configuration names (built from subscription, group and
    name when given so); a ConfigError when it names neither an address nor a resource."""
    if resource_id:
        return resource_id
    if subscription_id and resource_group and name:
        from ferry.compute_settings import resource_id as build

        return build(kind, subscription_id, resource_group, name)
    if address is None:
        raise ConfigError(
            "ferry reaches machines by address: give address='host or IP', or a resource_id "
            "(or subscription_id, resource_group and the name) whose address the workspace "
            "declares (`ferry target alias RESOURCE_ID HOST`)"
        )
    return None


@dataclass
class SparkAttachConfiguration:
    """What :meth:`SparkCompute.attach_configuration` returns; checked when made.

    Example::

        SparkAttachConfiguration(master="local[2]").to_dict()
        # {'master': 'local[2]', 'conf': {}, 'log_level': 'WARN'}
    """

    kind: str = field(default="spark", init=False)
    master: str = "local[*]"
    conf: Mapping[str, Any] = field(default_factory=dict)
    spark_home: str | None = None
    log_level: str = "WARN"

    def __post_init__(self) -> None:
        self.to_dict()

    def to_dict(self) -> dict[str, Any]:
        raw: dict[str, Any] = {
            "master": self.master,
            "conf": dict(self.conf),
            "log_level": self.log_level,
        }
        if self.spark_home:
            raw["spark_home"] = self.spark_home
        return _checker("spark")(raw)


class SparkCompute(ComputeTarget):
    """A Spark cluster (or Spark in local mode on this machine) attached as a compute target.

    Runs whose ``RunConfiguration.framework`` is ``"pyspark"`` go through ``spark-submit``
    with the driver on this machine (client mode), so logs and metrics flow like any run.

    Example::

        cfg = SparkCompute.attach_configuration(master="local[*]",
                                                conf={"spark.sql.shuffle.partitions": 8})
        ComputeTarget.attach(ws, "spark", cfg)
        rc = RunConfiguration(framework="pyspark")
        rc.target = "spark"
        Experiment(ws, "iris").submit(ScriptRunConfig("src", "train-spark.py", run_config=rc))
    """

    _noun = "Spark"

    @property
    def master(self) -> str:
        return str(self.config.get("master", "local[*]"))

    @staticmethod
    def attach_configuration(
        master: str = "local[*]",
        conf: Mapping[str, Any] | None = None,
        spark_home: str | None = None,
        log_level: str = "WARN",
    ) -> SparkAttachConfiguration:
        """A configuration for :meth:`ComputeTarget.attach`.

        ``master``: ``local[*]``, ``local[N]`` or ``spark://host:port``; ``conf``: Spark settings
        given to every run (a run's own ``spark.configuration`` wins); ``spark_home``: a Spark
        distribution to use instead of the pyspark package's; ``log_level``: Spark's own log
        level in the run's log when no log4j2 configuration of yours is found (default WARN).
        """
        return SparkAttachConfiguration(
            master=master, conf=dict(conf or {}), spark_home=spark_home, log_level=log_level
        )


@dataclass(frozen=True)
class RayAttachConfiguration:
    """An attach configuration of kind ``ray`` (see :meth:`RayCluster.attach_configuration`)."""

    config: dict[str, Any]
    kind: str = "ray"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.config)


class RayCluster(ComputeTarget):
    """A Ray cluster attached to the workspace; jobs are placed on it by Ray.

    Resources are per process (per rank): ``num_cpus``, ``num_gpus``, ``memory`` (bytes, or a
    size such as ``"4GiB"``) and ``resources`` (custom Ray resources). ``node_dir`` is where
    nodes keep ferry's cache, environments and run folders (default: a private folder in the
    node user's home, ``~/.cache/ferry-ray``).

    Example::

        config = RayCluster.attach_configuration(address="auto", num_cpus=1)
        cluster = ComputeTarget.attach(ws, "ray", config)
        RayCluster(ws, "ray").get_status()["nodes"]
    """

    _noun = "Ray"

    @staticmethod
    def attach_configuration(
        address: str = "auto",
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
        memory: int | str | None = None,
        resources: Mapping[str, float] | None = None,
        node_dir: str | None = None,
        **settings: Any,
    ) -> RayAttachConfiguration:
        """What :meth:`ComputeTarget.attach` stores for a Ray cluster (checked at once)."""
        config: dict[str, Any] = {
            "address": address,
            "num_cpus": num_cpus,
            "num_gpus": num_gpus,
            "memory": memory,
            "resources": dict(resources or {}),
            **settings,
        }
        if node_dir is not None:
            config["node_dir"] = node_dir
        return RayAttachConfiguration(_checker("ray")(config))

    def get_status(self) -> dict[str, Any]:
        """Nodes and free resources, as ``ferry target status NAME`` shows them."""
        return target_class(self.type).status(self.name, self.config, self.workspace)
