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
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
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


#: kind -> (module, class) of the public class that stands for targets of that kind
_CLASSES = {
    "ssh": ("ferry.compute", "RemoteCompute"),
    "spark": ("ferry.compute", "SparkCompute"),
    "ray": ("ferry.compute", "RayCluster"),
    "amlcompute": ("ferry.compute_aml", "AmlCompute"),
    "hdinsight": ("ferry.compute_hdinsight", "HDInsightCompute"),
}


class ComputeTypeMismatch(TargetError, ConfigError):
    """A target looked up through the class of another kind (``SparkCompute(ws, "vm")``)."""


def note(text: str) -> None:
    """One line saying that a setting of the reference means nothing here (never a failure)."""
    print(f"ferry: {text}", file=sys.stderr)


def _stored(workspace: Any, name: str) -> tuple[str, dict[str, Any]]:
    if name == LOCAL:
        return LOCAL, {}
    found = workspace.store.get_target(name)
    if found is None:
        listing = ", ".join([LOCAL, *sorted(workspace.store.list_targets())])
        raise TargetNotFound(
            f"ComputeTargetNotFound: no compute target named {name!r} in this workspace; "
            f"attached targets: {listing}. Attach one with `ferry target attach`, or create "
            "a cluster with ComputeTarget.create(ws, name, AmlCompute.provisioning_configuration(…))"
        )
    kind, config = found
    return kind, dict(config)


def _class_for(kind: str) -> type[ComputeTarget]:
    module_name, attr = _CLASSES.get(kind, ("ferry.compute", "ComputeTarget"))
    cls: type[ComputeTarget] = getattr(importlib.import_module(module_name), attr)
    return cls


class ComputeTarget:
    """A compute target of the workspace (or the built-in ``local``), as the reference's.

    ``ComputeTarget(ws, name)`` returns an instance of the class of the target's kind
    (:class:`RemoteCompute` for ssh, ``AmlCompute`` for a managed cluster …); a missing name is a
    ``ComputeTargetException`` (ferry's :class:`~ferry.errors.TargetError`). Attached targets
    exist as long as they are attached: their ``provisioning_state`` is ``"Succeeded"``.
    """

    #: the word for this class's kind in messages
    _noun = "compute target"

    def __new__(cls, workspace: Any = None, name: str | None = None) -> ComputeTarget:
        if workspace is None or name is None:  # deserialize() fills the fields itself
            return super().__new__(cls)
        kind = _stored(workspace, name)[0]
        chosen = _class_for(kind)
        if not issubclass(chosen, cls):
            raise ComputeTypeMismatch(
                f"compute target {name!r} is a {kind} target, not a {cls._noun} one; look it "
                f"up with ComputeTarget(ws, {name!r})"
            )
        return super().__new__(chosen)

    def __init__(self, workspace: Any = None, name: str | None = None) -> None:
        if workspace is None or name is None:
            return
        self.workspace = workspace
        self.name = name
        self.type, self.config = _stored(workspace, name)
        self.tags: dict[str, str] | None = None
        self.description: str | None = None
        self.location = "local"
        self.provisioning_errors: list[dict[str, Any]] | None = None

    @property
    def id(self) -> str:
        return f"ferry:{self.workspace.path}/computes/{self.name}"

    @property
    def provisioning_state(self) -> str:
        """``Succeeded``: an attached target exists as soon as it is attached."""
        return "Succeeded"

    @property
    def cluster_resource_id(self) -> str | None:
        return self.config.get("resource_id")

    @staticmethod
    def attach(
        workspace: Any, name: str, attach_configuration: AttachConfiguration
    ) -> ComputeTarget:
        """Store a target under ``name``; its kind checks the configuration first. A
        configuration naming a resource id gets its address from the workspace's aliases."""
        validate_name(name)
        if name == LOCAL:
            raise ConfigError("'local' is built in; choose another name for the target")
        kind = attach_configuration.kind
        raw = resolve_resource(workspace, kind, attach_configuration.to_dict())
        config = target_class(kind).validate_config(raw)
        workspace.store.save_target(name, kind, config)
        return ComputeTarget(workspace, name)

    @staticmethod
    def create(workspace: Any, name: str, provisioning_configuration: Any) -> ComputeTarget:
        """Create a compute target that ferry manages (``AmlCompute``: a Ray cluster), as the
        reference does; ``wait_for_completion`` then waits for it."""
        validate_name(name)
        if name == LOCAL or workspace.store.get_target(name) is not None:
            raise ComputeTargetExists(
                f"a compute target named {name!r} already exists in this workspace; use it "
                f"(ComputeTarget(ws, {name!r})) or delete it first"
            )
        create = getattr(provisioning_configuration, "create_target", None)
        if create is None:
            raise ConfigError(
                "ComputeTarget.create takes a provisioning configuration, such as "
                "AmlCompute.provisioning_configuration(vm_size=…, max_nodes=…); machines that "
                "exist already are attached: ComputeTarget.attach(ws, name, "
                "RemoteCompute.attach_configuration(…))"
            )
        target: ComputeTarget = create(workspace, name)
        return target

    @classmethod
    def list(cls, workspace: Any) -> dict[str, ComputeTarget]:
        out = {LOCAL: ComputeTarget(workspace, LOCAL)}
        for name in workspace.store.list_targets():
            out[name] = ComputeTarget(workspace, name)
        return out

    def wait_for_completion(
        self, show_output: bool = False, is_delete_operation: bool = False
    ) -> None:
        """Nothing to wait for on an attached target (it is there); said as the reference says."""
        if show_output:
            print(f'Provisioning operation finished, operation "{self.provisioning_state}"')

    def refresh_state(self) -> None:
        self.type, self.config = _stored(self.workspace, self.name)

    def get_status(self) -> Any:
        """The provisioning state (``"Succeeded"``); kinds with nodes say more."""
        self.refresh_state()
        return self.provisioning_state

    def update(self, *args: Any, **kwargs: Any) -> None:
        raise ComputeTargetRefusal(
            f"{self.name!r} is a {self.type} target: only AmlCompute clusters are updated "
            "(min_nodes, max_nodes, idle_seconds_before_scaledown); attach this one again to "
            "change it"
        )

    def delete(self) -> None:
        """Attached targets were not created by ferry: ``detach()`` forgets them."""
        raise ComputeTargetRefusal(
            f"{self.name!r} was attached, not created by ferry, so there is nothing to delete; "
            "use detach() to forget it"
        )

    def detach(self) -> None:
        if self.name == LOCAL:
            raise ConfigError("the built-in 'local' target cannot be detached")
        self.workspace.store.delete_target(self.name)

    def serialize(self) -> dict[str, Any]:
        """The reference's fields, and ferry's stored configuration (never a secret)."""
        return {
            "id": self.id,
            "name": self.name,
            "location": self.location,
            "type": self.type,
            "tags": self.tags,
            "description": self.description,
            "provisioning_state": self.provisioning_state,
            "provisioning_errors": self.provisioning_errors,
            "config": dict(self.config),
        }

    @classmethod
    def deserialize(cls, workspace: Any, object_dict: Mapping[str, Any]) -> ComputeTarget:
        """The target a :meth:`serialize` dict describes, in ``workspace``."""
        try:
            kind, name, config = object_dict["type"], object_dict["name"], object_dict["config"]
        except (KeyError, TypeError):
            raise ComputeTargetRefusal(
                "not a serialized compute target: it needs 'name', 'type' and 'config'"
            ) from None
        target = _class_for(str(kind))()
        target.workspace, target.name = workspace, str(name)
        target.type, target.config = str(kind), dict(config)
        target.tags = object_dict.get("tags")
        target.description = object_dict.get("description")
        target.location = str(object_dict.get("location") or "local")
        target.provisioning_errors = object_dict.get("provisioning_errors")
        return target

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(workspace={getattr(self, 'workspace', None)!r}, "
            f"name={getattr(self, 'name', None)!r}, type={getattr(self, 'type', None)!r}, "
            f"provisioning_state={self.provisioning_state!r})"
        )


class ComputeTargetExists(TargetError, ConfigError):
    """ComputeTarget.create with a name already in use."""


class ComputeTargetRefusal(TargetError, ConfigError):
    """What the reference refuses on a compute target (delete an attached one, update one that
    is not a cluster): a ComputeTargetException and a ConfigError."""


def resolve_resource(workspace: Any, kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """A configuration naming a resource id (and no address) with the address the workspace
    declared for it; anything else unchanged."""
    rid = config.get("resource_id")
    if config.get("address") or not rid:
        return config
    from ferry.compute_settings import resolve_alias

    host, port = resolve_alias(Path(workspace.path), str(rid))
    resolved = {**config, "address": host}
    if port is not None:
        resolved["ssh_port"] = port
    return resolved


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
