"""Prune the images of Docker environments that a workspace no longer uses.

An engine is shared by every workspace of the machine, so a workspace prunes only the images it
used: every run that finds or builds an image touches ``<envs>/docker-<hash>.use``, and
``ferry env prune`` removes an image whose record is older than ``older_than_days`` — never one
that an unfinished run of the workspace needs, nor one a container still uses (the engine
refuses: kept as busy). What killed builds left on the engine (stopped build containers, untagged
images of a Dockerfile's build) goes too. Without a running engine there is nothing to prune
(said in the report).

Example::

    report = prune_images(ws.envs_dir, needed={"5f0c…"}, older_than_days=30)
    report.removed            # ['ferry-env:…']
"""

from __future__ import annotations

import os
import time
from collections.abc import Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LABEL_HASH = "ferry.spec-hash"


def use_record(envs_dir: Path, spec_hash: str) -> Path:
    return Path(envs_dir) / f"docker-{spec_hash}.use"


def record_use(envs_dir: Path, spec_hash: str) -> None:
    """Touch the workspace's record of a use of the image (prune keeps recent ones)."""
    path = use_record(envs_dir, spec_hash)
    try:
        os.utime(path)
    except FileNotFoundError:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        except OSError:
            pass
    except OSError:
        pass


@dataclass
class ImagePruneReport:
    """Image tags removed (or that would be) and kept, and the leftovers of killed builds."""

    removed: list[str] = field(default_factory=list)
    in_use: list[str] = field(default_factory=list)
    recent: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)
    leftovers: int = 0
    freed_bytes: int = 0
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "removed": self.removed,
            "keptInUse": self.in_use,
            "keptRecent": self.recent,
            "keptBusy": self.busy,
            "leftovers": self.leftovers,
            "freedBytes": self.freed_bytes,
            "note": self.note,
        }


def prune_images(
    envs_dir: Path,
    needed: Set[str],
    older_than_days: float = 30.0,
    dry_run: bool = False,
    now: float | None = None,
) -> ImagePruneReport:
    """Remove this workspace's unused environment images (see the module docstring)."""
    from ferry.agent import container
    from ferry.envbuild.docker_engine import client as make_client
    from ferry.envbuild.docker_engine import engine_address

    report = ImagePruneReport()
    address = engine_address()
    try:
        container.ping(address, timeout=2.0)
    except container.EngineError:
        report.note = f"no Docker engine answers at {address}: no images to prune"
        return report
    import docker

    cutoff = (time.time() if now is None else now) - older_than_days * 86400
    client = make_client(address)
    try:
        for image in client.images.list(filters={"label": LABEL_HASH}):
            digest = str(image.labels.get(LABEL_HASH, ""))
            record = use_record(envs_dir, digest)
            if not digest or not record.exists():
                continue  # another workspace's image
            tag = next(iter(image.tags), image.id)
            if digest in needed:
                report.in_use.append(tag)
            elif record.stat().st_mtime > cutoff:
                report.recent.append(tag)
            elif dry_run:
                report.removed.append(tag)
                report.freed_bytes += int(image.attrs.get("Size") or 0)
            else:
                try:
                    client.images.remove(image.id)
                except docker.errors.APIError:
                    report.busy.append(tag)  # a container still uses it
                    continue
                report.removed.append(tag)
                report.freed_bytes += int(image.attrs.get("Size") or 0)
                record.unlink(missing_ok=True)
        report.leftovers = _leftovers(client, dry_run)
    finally:
        client.close()
    return report


def _leftovers(client: Any, dry_run: bool) -> int:
    """Stopped build containers and untagged build images left by killed builds."""
    import docker

    found = 0
    for box in client.containers.list(all=True, filters={"label": "ferry.build"}):
        if box.status in ("created", "exited", "dead"):
            found += 1
            if not dry_run:
                box.remove(force=True)
    for image in client.images.list(filters={"label": "ferry.build", "dangling": True}):
        found += 1
        if not dry_run:
            try:
                client.images.remove(image.id)
            except docker.errors.APIError:
                found -= 1
    return found
