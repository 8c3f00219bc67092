"""Target kinds by name → dotted path, imported only when asked for.

Third parties register kinds through the ``ferry.targets`` entry-point group; a built-in name is
never silently overwritten.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from ferry.errors import ConfigError, TargetError, TargetNotFound
from ferry.spec import WorkspaceServices
from ferry.targets.base import Target

#: kind -> (dotted path, extra that brings its libraries)
BUILTIN: dict[str, tuple[str, str | None]] = {
    "local": ("ferry.targets.local:LocalTarget", None),
    "ssh": ("ferry.targets.ssh.target:SshTarget", "ssh"),
    "spark": ("ferry.targets.spark:SparkTarget", "spark"),
    "ray": ("ferry.targets.ray.target:RayTarget", "ray"),
    # a managed Ray cluster that Ray's autoscaler sizes (AmlCompute)
    "amlcompute": ("ferry.targets.ray.managed_target:ManagedRayTarget", "ray"),
    # spark-submit on a Spark cluster's head node reached over SSH (HDInsightCompute)
    "hdinsight": ("ferry.targets.spark.hdinsight:HDInsightTarget", "ssh"),
    "fake": ("ferry.testing.fake:FakeTarget", None),  # a scripted target for tests
}


def known_kinds() -> dict[str, tuple[str, str | None]]:
    kinds = dict(BUILTIN)
    for ep in entry_points(group="ferry.targets"):
        if ep.name not in kinds:
            kinds[ep.name] = (ep.value, None)
    return kinds


def target_class(kind: str) -> type[Target]:
    """The Target class for ``kind``; says which extra to install when a library is missing.
    A built-in kind skips the entry-point scan (it reads every installed package's metadata:
    ~20 ms of each submit and each supervisor; a built-in name is never overwritten anyway)."""
    kinds = BUILTIN if kind in BUILTIN else known_kinds()
    if kind not in kinds:
        raise ConfigError(
            f"unknown compute target kind {kind!r}; known kinds: {', '.join(sorted(kinds))}"
        )
    path, extra = kinds[kind]
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f" — install it with: pip install 'ferry[{extra}]'" if extra else ""
        raise TargetError(
            f"the {kind} target needs {exc.name or 'a missing library'}{hint}"
        ) from exc
    cls = getattr(module, attr)
    if not (isinstance(cls, type) and issubclass(cls, Target)):
        raise TargetError(f"{path} is not a ferry Target class")
    return cls


def resolve_target(workspace: WorkspaceServices, name: str) -> Target:
    """A ready Target instance for one run on the target called ``name`` (``local`` is built
    in; others are attached to the workspace)."""
    config: dict[str, Any]
    if name == "local":
        kind, config = "local", {}
    else:
        found = workspace.store.get_target(name)
        if found is None:
            raise TargetNotFound(
                f"ComputeTargetNotFound: no compute target named {name!r} in this workspace; "
                "attach one with `ferry target attach`"
            )
        kind, config = found
    return target_class(kind)(name, config, workspace)
