"""The local content-addressed store: ``<root>/ab/cdef…``, one read-only file per blob.

Blobs are written to ``<root>/tmp/`` and renamed into place, so a reader never sees half a blob
and two writers of the same blob cannot clash. They are not fsync'ed by default (like git's loose
objects): a blob torn by a power cut is caught by the hash check on read. Pass ``durable=True``
to fsync each blob before it is published.

Copies out of the store (:meth:`LocalBlobStore.link_or_copy`) are never hard links: a job that
opened a hard-linked file for writing — and root ignores the read-only bit — would silently
corrupt the store. Where the filesystem supports it (btrfs, XFS, bcachefs …) the copy is a
reflink: instant, sharing blocks copy-on-write, yet independent. Otherwise bytes are copied.

Example::

    store = LocalBlobStore(workspace / "blobs")
    digest = store.put_bytes(b"hi")
    assert store.read_bytes(digest) == b"hi"
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import stat
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from ferry.errors import SnapshotError
from ferry.snapshot.blobstore.base import CREATE_FLAGS, BlobStore, verifying_reader
from ferry.snapshot.digest import (
    CHUNK,
    DEFAULT_ALGO,
    check_algo,
    hash_bytes,
    hash_fd,
    is_digest,
    new_hasher,
)
from ferry.snapshot.errors import CorruptBlobError, MissingBlobError

_READ_FLAGS = (
    os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
)
_FICLONE = 0x40049409  # linux/fs.h; fcntl.FICLONE only exists from Python 3.12
_REFLINK_MIN = 64 * 1024  # below this a plain copy is as fast as the ioctl round trip
_counter = itertools.count()


class LocalBlobStore(BlobStore):
    """Blobs as read-only files under ``root`` (created on first write)."""

    def __init__(self, root: Path, algo: str = DEFAULT_ALGO, *, durable: bool = False) -> None:
        self.root = Path(root)
        self.algo = check_algo(algo)
        self.durable = durable
        self._root = os.fspath(self.root)
        self._made: set[str] = set()
        self._reflink = sys.platform == "linux"

    def __repr__(self) -> str:
        return f"LocalBlobStore({self._root!r}, algo={self.algo!r})"

    def path(self, digest: str) -> Path:
        """Where the blob lives (whether or not it exists)."""
        return Path(self._path(digest))

    def has(self, digests: Iterable[str]) -> set[str]:
        exists = os.path.exists
        return {d for d in digests if exists(self._path(d))}

    def put_file(self, path: Path, digest: str) -> bool:
        final = self._path(digest)
        if os.path.exists(final):
            return False
        src = os.open(path, _READ_FLAGS)
        try:
            if not stat.S_ISREG(os.fstat(src).st_mode):
                raise SnapshotError(f"{path} is not a regular file")

            def write(fd: int) -> None:
                if _copy_hashing(src, fd, self.algo) != digest:
                    raise SnapshotError(
                        f"{path} changed while it was being stored (expected {digest}); retry"
                    )

            self._write_blob(final, write)
        finally:
            os.close(src)
        return True

    def put_bytes(self, data: bytes) -> str:
        digest = hash_bytes(data, self.algo)
        final = self._path(digest)
        if not os.path.exists(final):
            self._write_blob(final, lambda fd: _write_all(fd, memoryview(data)))
        return digest

    def open(self, digest: str) -> BinaryIO:
        return verifying_reader(self._open_raw(digest), digest, self.algo)

    def read_bytes(self, digest: str) -> bytes:
        with self._open_raw(digest) as raw:
            data = raw.read()
        if hash_bytes(data, self.algo) != digest:
            raise CorruptBlobError(digest, f"file {self._path(digest)}")
        return data

    def link_or_copy(self, digest: str, dest_path: Path, mode: int) -> None:
        with self._open_raw(digest) as raw:
            src = raw.fileno()
            fd = os.open(dest_path, CREATE_FLAGS, 0o600)
            try:
                if self._reflink and os.fstat(src).st_size >= _REFLINK_MIN and self._clone(src, fd):
                    actual, _ = hash_fd(src, self.algo)
                else:
                    actual = _copy_hashing(src, fd, self.algo)
                if actual != digest:
                    raise CorruptBlobError(digest, f"file {self._path(digest)}")
                os.fchmod(fd, mode & 0o777)
            except BaseException:
                os.close(fd)
                os.unlink(dest_path)
                raise
            os.close(fd)

    def _clone(self, src: int, dst: int) -> bool:
        import fcntl

        try:
            fcntl.ioctl(dst, _FICLONE, src)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY):
                self._reflink = False  # this filesystem cannot; do not ask again
                return False
            raise
        return True

    def _open_raw(self, digest: str) -> BinaryIO:
        path = self._path(digest)
        try:
            return open(path, "rb", buffering=0)
        except FileNotFoundError:
            raise MissingBlobError(digest, self._root) from None
        except OSError as exc:
            raise SnapshotError(f"cannot read blob {digest}: {exc}") from exc

    def _path(self, digest: str) -> str:
        if not is_digest(digest, self.algo):
            raise SnapshotError(f"not a valid {self.algo} digest: {digest!r}")
        return f"{self._root}/{digest[:2]}/{digest[2:]}"

    def _temp(self) -> tuple[str, int]:
        folder = f"{self._root}/tmp"
        if folder not in self._made:
            os.makedirs(folder, exist_ok=True)
            self._made.add(folder)
        tmp = f"{folder}/{os.getpid()}-{threading.get_ident()}-{next(_counter)}"
        return tmp, os.open(tmp, CREATE_FLAGS, 0o444)

    def _write_blob(self, final: str, write: Callable[[int], None]) -> None:
        """Write a blob under a temporary name, then rename it into place."""
        tmp, fd = self._temp()
        try:
            write(fd)
            if self.durable:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        try:
            shard = final[: final.rindex("/")]
            if shard not in self._made:
                os.makedirs(shard, exist_ok=True)
                self._made.add(shard)
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]


def _copy_hashing(src: int, dst: int, algo: str) -> str:
    hasher = new_hasher(algo)
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    while n := os.readv(src, [buffer]):
        hasher.update(view[:n])
        _write_all(dst, view[:n])
    return hasher.hexdigest()
