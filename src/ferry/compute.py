"""Compute targets by name, as the reference looks them up: ``ComputeTarget(workspace=ws, name=…)``.

``"local"`` is always there. Other targets are attached to the workspace with
:meth:`ComputeTarget.attach` and stored by name (their configuration, never their secrets). The
reference's configuration builders live here too — :class:`RemoteCompute` (SSH),
:class:`SparkCompute`, :class:`RayCluster` — as plain data: importing them costs nothing (no
asyncssh, ray or pyspark); each kind checks its settings in its own target module, loaded when
a configuration is made.

Example::

    ComputeTarget(workspace=ws, name="local").type   # 'local'
    config = RemoteCompute.attach_configuration(username="me", address="10.0.0.4")
    ComputeTarget.attach(ws, "vm", config)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ferry.errors import ConfigError, TargetError, TargetNotFound
from ferry.targets.registry import resolve_target as resolve_target  # where targets are made
from ferry.targets.registry import target_class

LOCAL = "local"
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


class AttachConfiguration(Protocol):
    """What ``*.attach_configuration(...)`` returns: a kind and a plain dict."""

    kind: str

    def to_dict(self) -> dict[str, Any]: ...


class ComputeTarget:
    """A compute target attached to a workspace (or the built-in ``local``)."""

    def __init__(self, workspace: Any, name: str) -> None:
        self.workspace = workspace
        self.name = name
        if name == LOCAL:
            self.type, self.config = LOCAL, {}
            return
        found = workspace.store.get_target(name)
        if found is None:
            attached = sorted(workspace.store.list_targets())
            listing = ", ".join([LOCAL, *attached])
            raise TargetNotFound(
                f"ComputeTargetNotFound: no compute target named {name!r} in this workspace; "
                f"attached targets: {listing}. Attach one with `ferry target attach`."
            )
        self.type, self.config = found

    @staticmethod
    def attach(
        workspace: Any, name: str, attach_configuration: AttachConfiguration
    ) -> ComputeTarget:
        """Store a target under ``name``; its kind checks the configuration first."""
        validate_name(name)
        if name == LOCAL:
            raise ConfigError("'local' is built in; choose another name for the target")
        kind = attach_configuration.kind
        config = target_class(kind).validate_config(attach_configuration.to_dict())
        workspace.store.save_target(name, kind, config)
        return ComputeTarget(workspace, name)

    @classmethod
    def list(cls, workspace: Any) -> dict[str, ComputeTarget]:
        out = {LOCAL: cls(workspace, LOCAL)}
        for name in workspace.store.list_targets():
            out[name] = cls(workspace, name)
        return out

    def detach(self) -> None:
        if self.name == LOCAL:
            raise ConfigError("the built-in 'local' target cannot be detached")
        self.workspace.store.delete_target(self.name)

    def serialize(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "config": dict(self.config)}

    def __repr__(self) -> str:
        return f"ComputeTarget(name={self.name!r}, type={self.type!r})"


def validate_name(name: str) -> None:
    if not isinstance(name, str) or not (2 <= len(name) <= 64) or not set(name) <= _NAME_CHARS:
        raise ConfigError(
            f"compute target name {name!r} is not valid: use 2-64 letters, digits, '-' or '_'"
        )


def target_name(value: Any) -> str:
    """A target given as a name or a ComputeTarget-like object → its name."""
    name = getattr(value, "name", value)
    if not isinstance(name, str) or not name:
        raise ConfigError("compute_target must be a target name or a ComputeTarget")
    return name


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
        password or passphrase is never kept: give it at run time (the warning says how)."""
        if address is None and (vm_name or resource_id):
            raise ConfigError(
                "ferry reaches machines by address; give address='host or IP' (Azure resource "
                "ids are kept as information only)"
            )
        config: dict[str, Any] = {
            "username": username,
            "address": address,
            "ssh_port": ssh_port,
            "private_key_file": private_key_file,
            "subscription_id": subscription_id,
            "resource_group": resource_group,
            "vm_name": vm_name,
            "resource_id": resource_id,
            **settings,
        }
        checked = _checker("ssh")(
            {k: v for k, v in config.items() if v is not None},
            password=bool(password),
            passphrase=bool(private_key_passphrase),
        )
        return RemoteAttachConfiguration(checked)


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

    def __init__(self, workspace: Any, name: str) -> None:
        super().__init__(workspace, name)
        if self.type != "spark":
            raise ConfigError(f"compute target {name!r} is a {self.type} target, not a Spark one")

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
