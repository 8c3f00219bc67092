"""The blob store contract: content-addressed bytes, named by their digest.

A store is four methods (``has``, ``put_file``, ``put_bytes``, ``open``); ``read_bytes``,
``link_or_copy``, ``lacking`` and ``aside_mark`` have working defaults that a store may override
for speed or precision. Everything else — walking, manifests, limits, restoring — is written
once, above this contract.

Rules every store keeps (the conformance suite in ``tests/snapshot/blobstore_contract.py``
checks them):

* a blob becomes visible only when complete (write to a temporary name, then rename);
* ``put_file`` verifies the bytes it stores against the digest it was given;
* every read verifies the bytes against the digest; a mismatch is :class:`CorruptBlobError`,
  and the store sets the bad blob aside first: ``has`` stops reporting it, the next ``put``
  stores the intact content again, and ``aside_mark()`` changes. Without this a damaged blob
  would "exist" for ever and poison every later submit of the same content;
* a ``put`` of a blob that exists with the wrong size replaces it (a cheap check for
  truncation that needs no read);
* a manifest blob is stored only after all the blobs it names, so "the manifest is present"
  implies "its blobs are present" — unless a blob was set aside since, which ``aside_mark()``
  tells (the snapshotter then checks every blob again). A garbage collector must treat
  manifests as roots.

Example::

    >>> store = MemoryBlobStore()
    >>> digest = store.put_bytes(b"hello")
    >>> store.read_bytes(digest)
    b'hello'
"""

from __future__ import annotations

import io
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import BinaryIO

from ferry.snapshot.digest import CHUNK, DEFAULT_ALGO, Hasher, new_hasher
from ferry.snapshot.errors import CorruptBlobError

CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


class BlobStore(ABC):
    """Content-addressed storage of file contents (see the module docstring for the rules)."""

    #: The digest algorithm naming this store's blobs (see :mod:`ferry.snapshot.digest`).
    algo: str = DEFAULT_ALGO

    @abstractmethod
    def has(self, digests: Iterable[str]) -> set[str]:
        """The subset of ``digests`` the store holds."""

    @abstractmethod
    def put_file(self, path: Path, digest: str) -> bool:
        """Store the file at ``path`` whose content hashes to ``digest``.

        Returns True if the blob was new. Raises SnapshotError if the bytes read do not hash to
        ``digest`` (the file changed since it was hashed); nothing is stored then.
        """

    @abstractmethod
    def put_bytes(self, data: bytes) -> str:
        """Store ``data``; return its digest."""

    @abstractmethod
    def open(self, digest: str) -> BinaryIO:
        """A reader of the blob that raises CorruptBlobError when the end is reached and the
        bytes did not match ``digest``; MissingBlobError if the store has no such blob."""

    def lacking(self, sizes: Mapping[str, int]) -> set[str]:
        """The digests of ``sizes`` (digest -> expected size) the store cannot serve.

        That is the absent ones and, where the store can tell cheaply (one ``stat``), those
        stored with another size — which are set aside, so storing them again heals them.
        """
        return set(sizes) - self.has(sizes)

    def aside_mark(self) -> str:
        """A value that changes whenever the store sets a corrupt blob aside.

        The snapshotter records it; while it is unchanged, a stored manifest still implies its
        blobs. This default suits a store that never sets anything aside.
        """
        return ""

    def read_bytes(self, digest: str) -> bytes:
        """The whole blob, verified."""
        with self.open(digest) as reader:
            return reader.read()

    def link_or_copy(self, digest: str, dest_path: Path, mode: int) -> None:
        """Create ``dest_path`` (which must not exist; a link there is not followed) holding the
        blob, with permission bits ``mode``. The copy is independent of the store: writing to
        it can never change a blob. On any error the partial file is removed."""
        fd = os.open(dest_path, CREATE_FLAGS, 0o600)
        try:
            with self.open(digest) as reader:
                while chunk := reader.read(CHUNK):
                    os.write(fd, chunk)
            os.fchmod(fd, mode & 0o777)
        except BaseException:
            os.close(fd)
            os.unlink(dest_path)
            raise
        os.close(fd)


#: Called when a read finds a blob corrupt: sets it aside, returns the error to raise.
OnCorrupt = Callable[[], CorruptBlobError]


class VerifyingReader(io.RawIOBase):
    """Reads a raw stream and checks its digest when the end is reached."""

    def __init__(
        self, raw: BinaryIO, digest: str, algo: str, on_corrupt: OnCorrupt | None = None
    ) -> None:
        super().__init__()
        self._raw = raw
        self._digest = digest
        self._hasher: Hasher = new_hasher(algo)
        self._checked = False
        self._on_corrupt = on_corrupt

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        data = self._raw.read(len(view))
        n = len(data)
        if n:
            view[:n] = data
            self._hasher.update(data)
        elif not self._checked:
            self._checked = True
            if self._hasher.hexdigest() != self._digest:
                if self._on_corrupt is not None:
                    raise self._on_corrupt()
                raise CorruptBlobError(self._digest)
        return n

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def verifying_reader(
    raw: BinaryIO, digest: str, algo: str, on_corrupt: OnCorrupt | None = None
) -> BinaryIO:
    """Wrap ``raw`` so that reading it to the end verifies ``digest`` (and on a mismatch raises
    what ``on_corrupt`` returns, after it has set the blob aside)."""
    return io.BufferedReader(VerifyingReader(raw, digest, algo, on_corrupt), CHUNK)
