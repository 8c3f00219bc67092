"""Compute targets by name, as the reference looks them up: ``ComputeTarget(workspace=ws, name=…)``.

``"local"`` is always there. Other targets are attached to the workspace with
:meth:`ComputeTarget.attach` and stored by name (their configuration, never their secrets), or
created by ferry with :meth:`ComputeTarget.create` (``AmlCompute``: a managed Ray cluster, in
:mod:`ferry.compute_aml`). ``ComputeTarget(ws, name)`` returns the class of the target's kind:
:class:`RemoteCompute`, :class:`SparkCompute`, :class:`RayCluster` (their attach configurations
are in :mod:`ferry.compute_attach`, importable from here), ``AmlCompute``, ``HDInsightCompute``.
Missing targets and what the reference refuses are ``ComputeTargetException`` (ferry's
:class:`~ferry.errors.TargetError`).

Example::

    ComputeTarget(workspace=ws, name="local").type   # 'local'
    config = RemoteCompute.attach_configuration(username="me", address="10.0.0.4")
    ComputeTarget.attach(ws, "vm", config)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ferry.errors import ConfigError, TargetError, TargetNotFound
from ferry.targets.registry import resolve_target as resolve_target  # where targets are made
from ferry.targets.registry import target_class

if TYPE_CHECKING:
    pass

LOCAL = "local"
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


class AttachConfiguration(Protocol):
    """What ``*.attach_configuration(...)`` returns: a kind and a plain dict."""

    kind: str

    def to_dict(self) -> dict[str, Any]: ...


#: kind -> (module, class) of the public class that stands for targets of that kind
_CLASSES = {
    "ssh": ("ferry.compute_attach", "RemoteCompute"),
    "spark": ("ferry.compute_attach", "SparkCompute"),
    "ray": ("ferry.compute_attach", "RayCluster"),
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


# the attach configurations live in ferry.compute_attach; their classes are ferry.compute's too
_ATTACH = ("RemoteCompute", "SparkCompute", "RayCluster", "RemoteAttachConfiguration",
           "SparkAttachConfiguration", "RayAttachConfiguration", "reference_resource")  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _ATTACH:
        return getattr(importlib.import_module("ferry.compute_attach"), name)
    raise AttributeError(f"module 'ferry.compute' has no attribute {name!r}")
