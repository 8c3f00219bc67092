"""Writing a manifest back out: a working copy for a run, a restored folder, or a zip.

Safety rules, checked before the first byte is written:

* every path must be relative, without ``.``/``..``/empty components or NUL, and no entry may
  sit under another file or link (:func:`check_entry_path`, :func:`check_layout`);
* the destination must be new or an empty folder, so no pre-existing link can redirect a write;
* folders are created by ferry and checked with ``realpath`` to lie inside the destination;
  files are created with ``O_EXCL | O_NOFOLLOW``; links are created last, so nothing is ever
  written through a link;
* a link whose target may leave the tree (absolute, or climbing above the root) is not
  recreated; a warning names it. In-tree links are recreated as they were;
* every blob is verified against its digest while it is copied; on any error the partial
  destination is removed. A corrupt blob does not stop the copy at once: the others are still
  read, so that every corrupt blob is set aside by the store in one pass and the next snapshot
  of the intact source stores them all again (the error lists them).

Files are copies, never hard links into the store (a job writing to a hard-linked file — root
ignores read-only bits — would corrupt the store for every other run). On filesystems with
reflinks (btrfs, XFS) the copy is a copy-on-write clone, so it costs no space or time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

from ferry.errors import SnapshotError
from ferry.snapshot.blobstore.base import BlobStore
from ferry.snapshot.digest import CHUNK
from ferry.snapshot.errors import CorruptBlobError, CorruptBlobsError, UnsafePathError
from ferry.snapshot.manifest import Manifest, check_entry_path, check_layout, link_escapes

log = logging.getLogger("ferry.snapshot")
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed zip timestamps: the same snapshot gives the same bytes
_THREADS = 8  # copies are syscall-bound and release the GIL


def materialize(
    manifest: Manifest,
    store: BlobStore,
    dest: Path,
    *,
    on_warning: Callable[[str], None] | None = None,
) -> None:
    """Write the tree of ``manifest`` into ``dest`` (new or empty), modes kept, blobs verified."""
    _check_manifest(manifest, store)
    warn = on_warning or log.warning
    dest = Path(dest)
    created = _prepare_destination(dest)
    root = os.path.realpath(dest)
    made: set[str] = {root}
    try:
        jobs: list[tuple[str, Path, int]] = []
        for path, entry in manifest.files():
            folder = _make_parents(root, path, made)
            jobs.append((entry.digest, Path(folder, posixpath.basename(path)), entry.mode))
        corrupt: list[CorruptBlobError] = []

        def copy(job: tuple[str, Path, int]) -> None:
            try:
                store.link_or_copy(*job)
            except CorruptBlobError as exc:
                corrupt.append(exc)  # keep going: every bad blob is set aside in one pass

        if len(jobs) > 64:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(_THREADS) as pool:
                for _ in pool.map(copy, jobs):
                    pass
        else:
            for job in jobs:
                copy(job)
        if corrupt:
            raise CorruptBlobsError.of(sorted(corrupt, key=lambda e: e.digest))
        for path, link in manifest.links():
            if link_escapes(path, link.target):
                warn(f"not recreating link {path!r} -> {link.target!r}: it points outside the tree")
                continue
            folder = _make_parents(root, path, made)
            os.symlink(link.target, os.path.join(folder, posixpath.basename(path)))
    except BaseException:
        _undo(dest, created)
        raise


def restore(
    manifest: Manifest,
    store: BlobStore,
    dest: Path,
    *,
    on_warning: Callable[[str], None] | None = None,
) -> Path:
    """Restore a snapshot into the folder ``dest`` (new or empty); return its absolute path."""
    materialize(manifest, store, dest, on_warning=on_warning)
    return Path(dest).absolute()


def restore_zip(
    manifest: Manifest,
    store: BlobStore,
    zip_path: Path,
    *,
    on_warning: Callable[[str], None] | None = None,
) -> Path:
    """Write a snapshot as a zip archive (modes and in-tree links kept, written atomically)."""
    import zipfile  # only restores to an archive need it

    _check_manifest(manifest, store)
    warn = on_warning or log.warning
    zip_path = Path(zip_path)
    tmp = zip_path.with_name(f".{zip_path.name}.{os.getpid()}.tmp")
    try:
        corrupt: list[CorruptBlobError] = []
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for path, entry in manifest.files():
                info = zipfile.ZipInfo(path, _EPOCH)
                info.external_attr = (stat.S_IFREG | entry.mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                big = entry.size >= zipfile.ZIP64_LIMIT
                try:
                    with (
                        store.open(entry.digest) as src,
                        archive.open(info, "w", force_zip64=big) as out,
                    ):
                        shutil.copyfileobj(src, out, CHUNK)
                except CorruptBlobError as exc:
                    corrupt.append(exc)  # the archive is discarded; find every bad blob first
            for path, link in manifest.links():
                if link_escapes(path, link.target):
                    warn(
                        f"leaving out link {path!r} -> {link.target!r}: it points outside the tree"
                    )
                    continue
                info = zipfile.ZipInfo(path, _EPOCH)
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                archive.writestr(info, link.target.encode("utf-8", "surrogateescape"))
        if corrupt:
            raise CorruptBlobsError.of(corrupt)
        os.replace(tmp, zip_path)
    except UnicodeEncodeError as exc:
        _remove(tmp)
        raise SnapshotError(f"a path cannot be stored in a zip archive: {exc}") from exc
    except BaseException:
        _remove(tmp)
        raise
    return zip_path.absolute()


def _check_manifest(manifest: Manifest, store: BlobStore) -> None:
    if manifest.algo != store.algo:
        raise SnapshotError(f"a {manifest.algo} manifest cannot be read from a {store.algo} store")
    for path in manifest.entries:
        check_entry_path(path)
    check_layout(manifest.entries)


def _prepare_destination(dest: Path) -> bool:
    """Make sure ``dest`` is a new or empty real folder; return True if we created it."""
    if os.path.islink(dest):
        raise UnsafePathError(f"destination {dest} is a symbolic link")
    if dest.exists():
        if not dest.is_dir():
            raise SnapshotError(f"destination {dest} exists and is not a folder")
        if any(os.scandir(dest)):
            raise SnapshotError(f"destination {dest} is not empty")
        return False
    dest.mkdir(parents=True)
    return True


def _make_parents(root: str, path: str, made: set[str]) -> str:
    """Create the folders of ``path`` under ``root``; refuse if they resolve elsewhere."""
    parent = posixpath.dirname(path)
    folder = f"{root}/{parent}" if parent else root
    if folder not in made:
        os.makedirs(folder, exist_ok=True)
        if os.path.realpath(folder) != folder:
            raise UnsafePathError(f"{parent!r} does not resolve inside {root}; refusing to write")
        made.add(folder)
    return folder


def _undo(dest: Path, created: bool) -> None:
    if created:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in list(os.scandir(dest)):
        if child.is_dir(follow_symlinks=False):
            shutil.rmtree(child.path, ignore_errors=True)
        else:
            _remove(Path(child.path))


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
