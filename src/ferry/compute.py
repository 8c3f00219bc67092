"""Compute targets by name, as the reference looks them up: ``ComputeTarget(workspace=ws, name=…)``.

``"local"`` is always there. Other targets are attached to the workspace with
:meth:`ComputeTarget.attach` and stored by name (their configuration, never their secrets).

Example::

    ComputeTarget(workspace=ws, name="local").type   # 'local'
"""

from __future__ import annotations

from typing import Any, Protocol

from ferry.errors import ConfigError, TargetNotFound
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
