"""Taking a snapshot: walk, check limits, hash what changed, store what is missing.

The order is what makes it safe and cheap:

1. walk (listings and ``lstat`` only) and check the limits — over a limit, nothing is read;
2. reuse the stat cache; read and hash only new or changed files — an unreadable file fails
   the snapshot here, still before anything is stored;
3. if the store already has this manifest, it has every blob too — unless the store set a
   corrupt blob aside since this folder was last snapshotted (its ``aside_mark()`` changed), in
   which case every blob is checked (one ``stat`` each); otherwise ask the store which of the
   new digests it lacks (absent, or stored with the wrong size), write only those, and store
   the manifest last. So a blob found corrupt by a restore is stored again by the next
   snapshot of the intact source.

Example::

    result = take_snapshot(Path("src"), LocalBlobStore(ws / "blobs"), ws / "cache" / "stat")
    result.snapshot_id, result.stats.new_bytes
    load_manifest(store, result.snapshot_id) == result.manifest
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ferry.errors import SnapshotError
from ferry.snapshot.blobstore.base import BlobStore
from ferry.snapshot.digest import hash_bytes, hash_fd
from ferry.snapshot.errors import SnapshotLimitError, UnreadableFilesError
from ferry.snapshot.limits import SnapshotLimits, limit_message
from ferry.snapshot.manifest import (
    EXECUTABLE,
    REGULAR,
    Entry,
    FileEntry,
    LinkEntry,
    Manifest,
)
from ferry.snapshot.statcache import RACY_NS, CacheEntries, StatCache
from ferry.snapshot.walk import walk

# Files up to this size are read in one call and kept in memory until stored (within a budget),
# so a new small file is read exactly once.
_SMALL = 1 << 20
_KEEP_BUDGET = 64 << 20
_READ_FLAGS = (
    os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
)
_SHOWN = 20


@dataclass(frozen=True, slots=True)
class SnapshotStats:
    """Sizes and costs of one snapshot; ``new_*`` count blobs the store did not have."""

    files: int
    bytes: int
    new_files: int
    new_bytes: int
    hashed_files: int
    seconds: float
    hashed_bytes: int = 0
    links: int = 0
    reused: bool = False  # the store already held this exact manifest

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class SnapshotResult:
    """A stored snapshot: its manifest, id (= the manifest blob's digest), stats and warnings."""

    manifest: Manifest
    snapshot_id: str
    stats: SnapshotStats
    warnings: list[str]


def take_snapshot(
    source_dir: Path,
    store: BlobStore,
    cache_dir: Path,
    limits: SnapshotLimits | None = None,
    *,
    on_warning: Callable[[str], None] | None = None,
    exclude: Sequence[Path] = (),
) -> SnapshotResult:
    """Snapshot ``source_dir`` into ``store``; ``cache_dir`` keeps the stat cache between calls.

    ``exclude`` lists paths never to take (pass the workspace in use: it may sit inside the
    source folder); other ferry workspaces below ``source_dir`` are left out anyway, and so are
    files that look like secrets unless an ignore file takes them in (each gets a warning).

    Raises SnapshotLimitError (nothing stored) when over ``limits`` (default: from the
    environment, see :mod:`.limits`), UnreadableFilesError (nothing stored) listing files that
    cannot be read, and SnapshotError for a folder that is not one or is the workspace itself.
    """
    started, walk_ns = time.perf_counter(), time.time_ns()
    limits = SnapshotLimits.from_env() if limits is None else limits
    tree = walk(source_dir, exclude=exclude)
    if tree.unreadable:
        _fail_unreadable(tree.root, tree.unreadable)
    sizes = [(f[0], f[1]) for f in tree.files]
    problems = limits.problems(sizes)
    if problems:
        raise SnapshotLimitError(limit_message(tree.root, problems, sizes, tree.ignore_files))
    warnings = tree.notes() + limits.warnings(sizes)
    for message in warnings:
        if on_warning is not None:
            on_warning(message)

    cache = StatCache.load(cache_dir, tree.root, store.algo)
    cached = cache.entries
    entries: dict[str, Entry] = {}
    fresh: CacheEntries = {}
    to_hash: list[tuple[str, int, int, int, int, int]] = []
    racy_after = walk_ns - RACY_NS
    for f in tree.files:
        rel, size, mtime, ino, ctime, mode = f
        c = cached.get(rel)
        if c is not None and c[0] == size and c[1] == mtime and c[2] == ino and c[3] == ctime:
            entries[rel] = FileEntry(c[4], size, EXECUTABLE if mode & 0o100 else REGULAR)
            fresh[rel] = c
        else:
            to_hash.append(f)

    kept: dict[str, bytes] = {}  # digest -> content of small new files, to store unread
    hashed: set[str] = set()
    hashed_bytes = kept_bytes = 0
    failures: list[str] = []
    for rel, size, mtime, ino, ctime, mode in to_hash:
        path = os.path.join(tree.root, rel)
        try:
            digest, actual, data = _hash_file(path, size, store.algo, kept_bytes < _KEEP_BUDGET)
        except OSError as exc:
            failures.append(f"{rel} ({exc.strerror or exc})")
            continue
        except SnapshotError as exc:
            failures.append(f"{rel} ({exc})")
            continue
        hashed_bytes += actual
        entries[rel] = FileEntry(digest, actual, EXECUTABLE if mode & 0o100 else REGULAR)
        hashed.add(digest)
        if data is not None and digest not in kept:
            kept[digest] = data
            kept_bytes += len(data)
        if actual == size and mtime < racy_after:
            fresh[rel] = [size, mtime, ino, ctime, digest]
    if failures:
        _fail_unreadable(tree.root, failures)
    for rel, target in tree.links:
        entries[rel] = LinkEntry(target)

    manifest = Manifest(entries, store.algo)
    snapshot_id = manifest.snapshot_id
    new_files, new_bytes, reused, mark = _store_missing(
        store, manifest, tree.root, cache, hashed, kept
    )
    if fresh != cached or snapshot_id != cache.snapshot_id or mark != cache.store_mark:
        cache.save(fresh, snapshot_id, mark)
    stats = SnapshotStats(
        files=len(tree.files),
        bytes=manifest.total_bytes,
        new_files=new_files,
        new_bytes=new_bytes,
        hashed_files=len(to_hash),
        seconds=time.perf_counter() - started,
        hashed_bytes=hashed_bytes,
        links=len(tree.links),
        reused=reused,
    )
    return SnapshotResult(manifest, snapshot_id, stats, warnings)


def load_manifest(store: BlobStore, snapshot_id: str) -> Manifest:
    """The manifest stored under ``snapshot_id`` (verified, validated)."""
    data = store.read_bytes(snapshot_id)
    try:
        parsed = json.loads(data)
    except ValueError as exc:
        raise SnapshotError(f"blob {snapshot_id} is not a manifest: {exc}") from exc
    return Manifest.from_dict(parsed)


def save_manifest(store: BlobStore, manifest: Manifest) -> str:
    """Store ``manifest`` itself (call only once its blobs are stored); return its id."""
    if manifest.algo != store.algo:
        raise SnapshotError(f"a {manifest.algo} manifest cannot go into a {store.algo} store")
    return store.put_bytes(manifest.canonical_json())


def _store_missing(
    store: BlobStore,
    manifest: Manifest,
    root: str,
    cache: StatCache,
    hashed: set[str],
    kept: dict[str, bytes],
) -> tuple[int, int, bool, str]:
    """Write the blobs the store lacks, then the manifest.

    Returns (new blobs, their bytes, whether the store already held this manifest, the store's
    aside mark to remember).
    """
    snapshot_id = manifest.snapshot_id
    previous_id = cache.snapshot_id
    # Read before checking: a blob set aside after this point changes the mark again.
    mark = store.aside_mark()
    present = store.has({snapshot_id} | ({previous_id} if previous_id else set()))
    sizes = {entry.digest: entry.size for _, entry in manifest.files()}
    if mark == cache.store_mark and (snapshot_id in present or previous_id in present):
        # Nothing was set aside since this folder's blobs were last confirmed: a stored
        # manifest still implies its blobs, so only the newly hashed ones need a look.
        wanted = {digest: sizes[digest] for digest in hashed}
    else:
        # Another store, a lost cache, or corrupt blobs set aside since: check every blob
        # (one stat each), so a blob that was set aside is stored again from the source.
        wanted = sizes
    missing = store.lacking(wanted)
    if snapshot_id in present and not missing:
        return 0, 0, True, mark
    by_digest: dict[str, tuple[str, int]] = {}
    for path, entry in manifest.files():
        if entry.digest in missing:
            by_digest.setdefault(entry.digest, (path, entry.size))
    new_bytes = 0
    for digest in sorted(missing):
        path, size = by_digest[digest]
        data = kept.get(digest)
        if data is not None:
            store.put_bytes(data)
        else:
            store.put_file(Path(root, path), digest)  # re-hashes: a changed file is refused
        new_bytes += size
    save_manifest(store, manifest)
    return len(missing), new_bytes, False, mark


def _hash_file(path: str, size: int, algo: str, may_keep: bool) -> tuple[str, int, bytes | None]:
    """Digest and byte count of a regular file, never following a link or blocking on a fifo.
    A small file is read in one call, and its bytes are returned too when ``may_keep``."""
    fd = os.open(path, _READ_FLAGS)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SnapshotError("it is no longer a regular file")
        if size > _SMALL:
            digest, actual = hash_fd(fd, algo)
            return digest, actual, None
        parts = [os.read(fd, size + 1)]
        while parts[-1]:
            parts.append(os.read(fd, _SMALL))  # normally one empty read: the end of the file
        data = b"".join(parts)
        return hash_bytes(data, algo), len(data), data if may_keep else None
    finally:
        os.close(fd)


def _fail_unreadable(root: str, failures: list[str]) -> None:
    shown = "\n".join(f"  {item}" for item in failures[:_SHOWN])
    more = f"\n  … and {len(failures) - _SHOWN} more" if len(failures) > _SHOWN else ""
    raise UnreadableFilesError(
        f"cannot snapshot {root}: {len(failures)} path(s) cannot be read (fix their permissions "
        f"or list them in an ignore file); nothing was stored:\n{shown}{more}",
        failures,
    )
