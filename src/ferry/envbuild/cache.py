"""Built environments on disk: ``<envs_root>/<hash>/`` published whole, looked up in microseconds.

Layout of one published environment (a virtual environment with ferry's records inside)::

    <envs_root>/<hash>/bin/python ...     the environment
    <envs_root>/<hash>/ferry-env.json     what was asked for and how it was built (the marker)
    <envs_root>/<hash>/lock.txt           the resolved lock: exact versions (`uv pip freeze`)
    <envs_root>/<hash>/.last-use          touched by every run that uses it (for prune)
    <envs_root>/<hash>.lock               the build lock (one build per hash at a time)
    <envs_root>/.tmp-<hash>-…/            a build in progress, renamed into place when done

An environment is published when its marker is present; the marker is written before the rename,
so a reader never sees half an environment.

Example::

    cache = EnvCache(ws.envs_dir)
    path = cache.lookup(spec_hash)       # None until built
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferry.agent.files import write_atomic

MARKER = "ferry-env.json"
LOCK_TEXT = "lock.txt"
LAST_USE = ".last-use"
TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"


@dataclass(frozen=True)
class BuiltEnvironment:
    """A published environment: its folder and the record ferry wrote when building it."""

    spec_hash: str
    path: Path
    meta: dict[str, Any] = field(default_factory=dict)
    last_use: float = 0.0

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def lock(self) -> str:
        try:
            return (self.path / LOCK_TEXT).read_text(encoding="utf-8")
        except OSError:
            return ""

    def size(self) -> int:
        return disk_usage(self.path)


def disk_usage(path: Path) -> int:
    """Bytes of the files under ``path``; a file with several hard links counts once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for folder, dirs, files in os.walk(path):
        for name in files + dirs:
            try:
                st = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


class EnvCache:
    """The folder of built environments of one workspace."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()

    def folder(self, spec_hash: str) -> Path:
        return self.root / spec_hash

    def lookup(self, spec_hash: str) -> Path | None:
        """The published environment of ``spec_hash``, or None (two stat calls, no lock)."""
        folder = self.root / spec_hash
        if os.path.isfile(folder / MARKER) and os.path.exists(folder / "bin" / "python"):
            return folder
        return None

    def touch(self, spec_hash: str) -> None:
        """Record a use now (prune keeps recently used environments)."""
        path = self.root / spec_hash / LAST_USE
        try:
            os.utime(path)
        except FileNotFoundError:
            path.touch()
        except OSError:
            pass  # a read-only cache still runs

    def build_lock(self, spec_hash: str) -> Any:
        """The inter-process lock that makes concurrent builds of one spec a single build."""
        from filelock import FileLock

        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.root / f"{spec_hash}.lock"))

    def new_temporary(self, spec_hash: str) -> Path:
        path = self.root / f"{TMP_PREFIX}{spec_hash}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def read(self, spec_hash: str) -> BuiltEnvironment | None:
        folder = self.lookup(spec_hash)
        if folder is None:
            return None
        try:
            meta = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        try:
            last_use = (folder / LAST_USE).stat().st_mtime
        except OSError:
            last_use = float(meta.get("builtAt") or 0.0)
        return BuiltEnvironment(spec_hash, folder, meta, last_use)

    def published(self) -> list[BuiltEnvironment]:
        """Every published environment, most recently used first."""
        if not self.root.is_dir():
            return []
        found = [
            self.read(entry.name)
            for entry in os.scandir(self.root)
            if entry.is_dir() and not entry.name.startswith(".")
        ]
        return sorted((b for b in found if b), key=lambda b: b.last_use, reverse=True)

    def discard(self, path: Path) -> None:
        """Remove a folder: renamed aside first, so a half-deleted one is never seen as built."""
        if not path.exists():
            return
        trash = self.root / f"{TRASH_PREFIX}{path.name}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(path, trash)
        except OSError:
            trash = path
        shutil.rmtree(trash, ignore_errors=True)

    def leftovers(self, spec_hash: str | None = None) -> list[Path]:
        """Temporary build folders (of one hash, or all) and trash left by killed processes."""
        if not self.root.is_dir():
            return []
        out = []
        tmp_prefix = f"{TMP_PREFIX}{spec_hash}-" if spec_hash else TMP_PREFIX
        for entry in os.scandir(self.root):
            trash = spec_hash is None and entry.name.startswith(TRASH_PREFIX)
            if trash or entry.name.startswith(tmp_prefix):
                out.append(Path(entry.path))
        return out


def tmp_owner(path: Path) -> str | None:
    """The spec hash a temporary build folder belongs to."""
    name = path.name
    if not name.startswith(TMP_PREFIX):
        return None
    return name[len(TMP_PREFIX) :].split("-", 1)[0]


def write_marker(folder: Path, meta: dict[str, Any]) -> None:
    """Write ``ferry-env.json`` atomically (temp file + rename)."""
    data = json.dumps(meta, indent=2, sort_keys=True).encode("utf-8")
    write_atomic(str(folder / MARKER), data)
