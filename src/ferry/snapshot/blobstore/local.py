"""The local content-addressed store: ``<root>/ab/cdef…``, one read-only file per blob.

Blobs are written to ``<root>/tmp/`` and renamed into place, so a reader never sees half a blob
and two writers of the same blob cannot clash. They are not fsync'ed by default (like git's loose
objects): a blob torn by a power cut is caught by the hash check on read. Pass ``durable=True``
to fsync each blob before it is published.

The store is private to its owner: folders are created 0700, blobs are 0400 and temporary files
0600, whatever the umask (blobs hold the user's source, ``.env`` files included when re-included).
Temporary files a killed writer left behind are removed when the store is first written to by a
process, once they are an hour old (one listing of ``tmp/``).

A blob found corrupt on any read (or, when storing, found with the wrong size) is moved to
``<root>/corrupt/<digest>.<UTC time>`` and the error says so: the next snapshot of the intact
content stores it again, and the bad bytes stay there for inspection.

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
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import BinaryIO

from ferry.agent.files import write_all
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
_FOLDER_MODE, _BLOB_MODE, _TEMP_MODE = 0o700, 0o400, 0o600
#: A temporary file untouched for this long belongs to a writer that died: it is removed.
ABANDONED_SECONDS = 3600
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

    @property
    def aside_dir(self) -> Path:
        """Where corrupt blobs are set aside (``<digest>.<UTC time>``)."""
        return self.root / "corrupt"

    def has(self, digests: Iterable[str]) -> set[str]:
        exists = os.path.exists
        return {d for d in digests if exists(self._path(d))}

    def lacking(self, sizes: Mapping[str, int]) -> set[str]:
        out: set[str] = set()
        for digest, size in sizes.items():
            try:
                st = os.lstat(self._path(digest))
            except FileNotFoundError:
                out.add(digest)
                continue
            if st.st_size != size or not stat.S_ISREG(st.st_mode):
                self._set_aside(digest, st)
                out.add(digest)
        return out

    def aside_mark(self) -> str:
        folder = os.fspath(self.aside_dir)
        try:
            st = os.stat(folder)
            count = len(os.listdir(folder))
        except FileNotFoundError:
            return ""
        # The count guards against two set-asides within one coarse mtime tick.
        return f"{st.st_ino}:{st.st_mtime_ns}:{count}"

    def put_file(self, path: Path, digest: str) -> bool:
        final = self._path(digest)
        src = os.open(path, _READ_FLAGS)
        try:
            st = os.fstat(src)
            if not stat.S_ISREG(st.st_mode):
                raise SnapshotError(f"{path} is not a regular file")
            if self._present(digest, final, st.st_size):
                return False

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
        if not self._present(digest, final, len(data)):
            self._write_blob(final, lambda fd: write_all(fd, data))
        return digest

    def open(self, digest: str) -> BinaryIO:
        raw, st = self._open_raw(digest)
        return verifying_reader(raw, digest, self.algo, lambda: self._corrupt(digest, st))

    def read_bytes(self, digest: str) -> bytes:
        raw, st = self._open_raw(digest)
        with raw:
            data = raw.read()
        if hash_bytes(data, self.algo) != digest:
            raise self._corrupt(digest, st)
        return data

    def link_or_copy(self, digest: str, dest_path: Path, mode: int) -> None:
        raw, st = self._open_raw(digest)
        with raw:
            src = raw.fileno()
            fd = os.open(dest_path, CREATE_FLAGS, 0o600)
            try:
                if self._reflink and st.st_size >= _REFLINK_MIN and self._clone(src, fd):
                    actual, _ = hash_fd(src, self.algo)
                else:
                    actual = _copy_hashing(src, fd, self.algo)
                if actual != digest:
                    raise self._corrupt(digest, st)
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

    def _open_raw(self, digest: str) -> tuple[BinaryIO, os.stat_result]:
        """The blob's file, opened without following a link, and its stat."""
        path = self._path(digest)
        try:
            fd = os.open(path, _READ_FLAGS)
        except FileNotFoundError:
            raise MissingBlobError(digest, self._root, self._found_aside(digest)) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a link where a blob should be: not ours
                raise self._corrupt(digest, os.lstat(path)) from None
            raise SnapshotError(f"cannot read blob {digest}: {exc}") from exc
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise self._corrupt(digest, st)
        return open(fd, "rb", buffering=0), st  # O_NONBLOCK is moot for a regular file

    def _present(self, digest: str, final: str, size: int) -> bool:
        """Whether the blob is stored with the right size; a wrong size is set aside."""
        try:
            st = os.lstat(final)
        except FileNotFoundError:
            return False
        if st.st_size == size and stat.S_ISREG(st.st_mode):
            return True
        self._set_aside(digest, st)
        return False

    def _corrupt(self, digest: str, st: os.stat_result | None) -> CorruptBlobError:
        """Set the blob aside and build the error that says so and how to recover."""
        return CorruptBlobError(digest, self._path(digest), self._set_aside(digest, st))

    def _set_aside(self, digest: str, st: os.stat_result | None) -> str | None:
        """Move the blob (the file described by ``st``) to ``corrupt/``; return where it went.

        If the file was meanwhile replaced (another writer stored the intact content) it is
        left alone. None when it cannot be moved (read-only store …): the caller then asks the
        user to delete it.
        """
        path = self._path(digest)
        folder = os.fspath(self.aside_dir)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        dest = f"{folder}/{digest}.{stamp}.{time.time_ns() % 1_000_000_000:09d}Z"
        try:
            self._folder(folder)
            now = os.lstat(path)
            if st is not None and (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                return self._found_aside(digest)
            os.rename(path, dest)
        except FileNotFoundError:
            return self._found_aside(digest)  # another reader set it aside first
        except OSError:
            return None
        return dest

    def _found_aside(self, digest: str) -> str | None:
        """The newest set-aside copy of ``digest``, if any (only asked on an error path)."""
        try:
            names = [n for n in os.listdir(self.aside_dir) if n.startswith(f"{digest}.")]
        except OSError:
            return None
        return f"{self.aside_dir}/{max(names)}" if names else None

    def _path(self, digest: str) -> str:
        if not is_digest(digest, self.algo):
            raise SnapshotError(f"not a valid {self.algo} digest: {digest!r}")
        return f"{self._root}/{digest[:2]}/{digest[2:]}"

    def _folder(self, folder: str) -> None:
        """Create ``folder`` (private) once per store object; the root first, also private."""
        if folder in self._made:
            return
        if self._root not in self._made:
            with contextlib.suppress(FileExistsError):
                os.makedirs(self._root, _FOLDER_MODE)
            self._made.add(self._root)
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, _FOLDER_MODE)
        self._made.add(folder)

    def _temp(self) -> tuple[str, int]:
        folder = f"{self._root}/tmp"
        if folder not in self._made:
            self._folder(folder)
            _remove_abandoned(folder, time.time() - ABANDONED_SECONDS)
        tmp = f"{folder}/{os.getpid()}-{threading.get_ident()}-{next(_counter)}"
        return tmp, os.open(tmp, CREATE_FLAGS, _TEMP_MODE)

    def _write_blob(self, final: str, write: Callable[[int], None]) -> None:
        """Write a blob under a temporary name, then rename it into place (read-only)."""
        tmp, fd = self._temp()
        try:
            write(fd)
            os.fchmod(fd, _BLOB_MODE)
            if self.durable:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        try:
            self._folder(final[: final.rindex("/")])
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def _remove_abandoned(folder: str, before: float) -> None:
    """Remove temporary files not modified since ``before`` (left by killed writers)."""
    try:
        with os.scandir(folder) as it:
            for entry in it:
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_mtime < before:
                        os.unlink(entry.path)
    except OSError:
        return


def _copy_hashing(src: int, dst: int, algo: str) -> str:
    hasher = new_hasher(algo)
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    while n := os.readv(src, [buffer]):
        hasher.update(view[:n])
        write_all(dst, view[:n])
    return hasher.hexdigest()
