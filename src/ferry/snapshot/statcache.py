"""The stat cache: what each file looked like when it was last hashed, so it is not read again.

One file per source folder in the cache folder, named by a hash of the folder's absolute path,
written atomically. An entry is trusted only when size, mtime_ns, inode and ctime_ns are all
unchanged (ctime catches ``touch -d``/mtime restores; the inode catches editors that save by
rename). A file modified within :data:`RACY_NS` of the walk is not cached at all: a second write
inside the same timestamp tick would be invisible to the stat, so it is hashed again next time
(git's "racily clean" rule). The file carries a checksum; a damaged cache is ignored, not used.

It also keeps the blob store's ``aside_mark()`` as it was when this folder's blobs were last
confirmed present: while the mark is unchanged, a stored manifest still implies its blobs. The
file is private to its owner (0600; the folder 0700 when ferry creates it): it lists file names.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VERSION = 1
# Coarse filesystems (FAT, HFS+) keep mtimes to 1-2 s; 2 s covers them.
RACY_NS = 2_000_000_000
_MAGIC = "ferry-statcache"

# rel path -> [size, mtime_ns, inode, ctime_ns, digest] (lists: exactly what JSON gives back)
CacheEntries = dict[str, list[Any]]


@dataclass
class StatCache:
    """The cached hashes of one source folder's files."""

    path: Path
    root: str
    algo: str
    snapshot_id: str | None = None
    entries: CacheEntries = field(default_factory=dict)
    store_mark: str | None = None  # the store's aside_mark() when its blobs were last checked

    @classmethod
    def location(cls, cache_dir: Path, root: str) -> Path:
        key = hashlib.sha256(root.encode("utf-8", "surrogateescape")).hexdigest()[:32]
        return Path(cache_dir) / f"{key}.json"

    @classmethod
    def load(cls, cache_dir: Path, root: str, algo: str) -> StatCache:
        """The cache of ``root``, or an empty one if missing, damaged or for another setup."""
        path = cls.location(cache_dir, root)
        empty = cls(path, root, algo)
        try:
            raw = path.read_bytes()
        except OSError:
            return empty
        header, _, body = raw.partition(b"\n")
        parts = header.decode("ascii", "replace").split(" ")
        if len(parts) != 3 or parts[:2] != [_MAGIC, str(VERSION)]:
            return empty
        if hashlib.sha256(body).hexdigest() != parts[2]:
            return empty
        try:
            data = json.loads(body)
        except ValueError:
            return empty
        if data.get("root") != root or data.get("algo") != algo:
            return empty
        entries = data.get("entries")
        snapshot_id = data.get("snapshot_id")
        mark = data.get("store_mark")
        if not isinstance(entries, dict) or not isinstance(snapshot_id, str | None):
            return empty
        return cls(path, root, algo, snapshot_id, entries, mark if isinstance(mark, str) else None)

    def save(self, entries: CacheEntries, snapshot_id: str, store_mark: str | None) -> None:
        """Replace the cache file atomically; a failure to write only costs speed next time."""
        body = json.dumps(
            {
                "algo": self.algo,
                "entries": entries,
                "root": self.root,
                "snapshot_id": snapshot_id,
                "store_mark": store_mark,
            },
            separators=(",", ":"),
        ).encode("utf-8", "surrogateescape")
        header = f"{_MAGIC} {VERSION} {hashlib.sha256(body).hexdigest()}\n".encode()
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with contextlib.suppress(FileExistsError):
                os.makedirs(self.path.parent, 0o700)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            with open(fd, "wb") as out:
                out.write(header + body)
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            return
        self.entries, self.snapshot_id, self.store_mark = entries, snapshot_id, store_mark
