"""Prune built environments that nobody used lately, never one that a live run needs.

An environment is kept when a run that is not finished (NotStarted, Queued, Preparing, Starting,
Running, CancelRequested, Finalizing, NotResponding) names it, when it was used within the last
``older_than_days``, or when another process holds its build lock. Folders left by killed builds
are removed as well, and so are the workspace's unused Docker images (:mod:`.docker_prune`).

Example::

    report = prune_environments(ws, older_than_days=30, dry_run=True)
    [b.spec_hash for b in report.removed]
"""

from __future__ import annotations

import time
from collections.abc import Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferry.envbuild.cache import BuiltEnvironment, EnvCache, disk_usage, tmp_owner
from ferry.envbuild.docker_prune import ImagePruneReport
from ferry.spec import WorkspaceServices
from ferry.status import RunStatus


@dataclass
class PruneReport:
    """What a prune removed (or would remove, with ``dry_run``) and why the rest was kept."""

    removed: list[BuiltEnvironment] = field(default_factory=list)
    in_use: list[BuiltEnvironment] = field(default_factory=list)
    recent: list[BuiltEnvironment] = field(default_factory=list)
    busy: list[BuiltEnvironment] = field(default_factory=list)
    leftovers: list[Path] = field(default_factory=list)
    freed_bytes: int = 0
    dry_run: bool = False
    #: the workspace's Docker images (:mod:`ferry.envbuild.docker_prune`)
    images: ImagePruneReport | None = None

    def to_dict(self) -> dict[str, Any]:
        def rows(items: list[BuiltEnvironment]) -> list[dict[str, Any]]:
            return [
                {"hash": b.spec_hash, "name": b.meta.get("name"), "lastUse": b.last_use}
                for b in items
            ]

        return {
            "dryRun": self.dry_run,
            "removed": rows(self.removed),
            "keptInUse": rows(self.in_use),
            "keptRecent": rows(self.recent),
            "keptBusy": rows(self.busy),
            "leftovers": [str(p) for p in self.leftovers],
            "freedBytes": self.freed_bytes,
            "images": self.images.to_dict() if self.images is not None else None,
        }


def prune(
    root: Path,
    needed: Set[str],
    older_than_days: float = 30.0,
    dry_run: bool = False,
    now: float | None = None,
) -> PruneReport:
    """Remove environments under ``root`` not in ``needed`` and unused for ``older_than_days``."""
    from filelock import Timeout

    cache = EnvCache(root)
    cutoff = (time.time() if now is None else now) - older_than_days * 86400
    report = PruneReport(dry_run=dry_run)
    for built in cache.published():
        if built.spec_hash in needed:
            report.in_use.append(built)
            continue
        if built.last_use > cutoff:
            report.recent.append(built)
            continue
        lock = cache.build_lock(built.spec_hash)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            report.busy.append(built)
            continue
        try:
            report.freed_bytes += disk_usage(built.path)
            report.removed.append(built)
            if not dry_run:
                cache.discard(built.path)  # the lock file stays: deleting a lock is racy
        finally:
            lock.release()
    for leftover in cache.leftovers():
        owner = tmp_owner(leftover)
        if owner is not None:
            lock = cache.build_lock(owner)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue  # a build in progress
            try:
                report.leftovers.append(leftover)
                if not dry_run:
                    cache.discard(leftover)
            finally:
                lock.release()
        else:
            report.leftovers.append(leftover)
            if not dry_run:
                cache.discard(leftover)
    return report


#: statuses of runs that have not finished and may still need their environment.
LIVE_STATUSES = tuple(s for s in RunStatus if not s.is_terminal())


def hashes_in_use(store: Any) -> set[str]:
    """The spec hashes of the environments (folders and Docker images) of every run that has
    not finished."""
    from ferry.envbuild.docker_spec import docker_hash, merge_run_docker
    from ferry.envbuild.spechash import environment_hash
    from ferry.errors import FerryError
    from ferry.jobdef import environment_spec
    from ferry.tracking import RunQuery

    needed: set[str] = set()
    for record in store.list_runs(RunQuery(statuses=list(LIVE_STATUSES))):
        definition = record.definition or {}
        spec = definition.get("environment")
        if not spec:
            continue
        try:
            env, _ = merge_run_docker(environment_spec(spec), definition.get("docker") or {})
            digest = docker_hash(env) if env.docker.wanted else environment_hash(env)
        except FerryError:
            continue
        if digest:
            needed.add(digest)
    return needed


def prune_environments(
    workspace: WorkspaceServices, older_than_days: float = 30.0, dry_run: bool = False
) -> PruneReport:
    """:func:`prune` for a workspace, keeping what its unfinished runs need; its Docker images
    too (:func:`ferry.envbuild.docker_prune.prune_images`)."""
    from ferry.envbuild.docker_prune import prune_images

    needed = hashes_in_use(workspace.store)
    report = prune(workspace.envs_dir, needed, older_than_days, dry_run)
    report.images = prune_images(workspace.envs_dir, needed, older_than_days, dry_run)
    return report
