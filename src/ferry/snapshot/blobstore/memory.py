"""An in-memory blob store: the test double, and a model of the contract in 80 lines."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import BinaryIO

from ferry.errors import SnapshotError
from ferry.snapshot.blobstore.base import BlobStore, verifying_reader
from ferry.snapshot.digest import DEFAULT_ALGO, check_algo, hash_bytes, is_digest
from ferry.snapshot.errors import CorruptBlobError, MissingBlobError


class MemoryBlobStore(BlobStore):
    """Blobs in a dict; ``blobs`` is public so tests can inspect (or damage) them, and
    ``set_aside`` keeps what reads found corrupt (digest -> the bad bytes).

    >>> store = MemoryBlobStore()
    >>> store.has([store.put_bytes(b"x")]) == {hash_bytes(b"x")}
    True
    """

    def __init__(self, algo: str = DEFAULT_ALGO) -> None:
        self.algo = check_algo(algo)
        self.blobs: dict[str, bytes] = {}
        self.set_aside: dict[str, bytes] = {}
        self._asides = 0

    def has(self, digests: Iterable[str]) -> set[str]:
        return {d for d in digests if self._checked(d) in self.blobs}

    def lacking(self, sizes: Mapping[str, int]) -> set[str]:
        out = set()
        for digest, size in sizes.items():
            data = self.blobs.get(self._checked(digest))
            if data is not None and len(data) != size:
                self._set_aside(digest, data)
                data = None
            if data is None:
                out.add(digest)
        return out

    def aside_mark(self) -> str:
        return str(self._asides)

    def put_file(self, path: Path, digest: str) -> bool:
        old = self.blobs.get(self._checked(digest))
        if old is not None and len(old) == Path(path).stat().st_size:
            return False
        data = Path(path).read_bytes()
        if hash_bytes(data, self.algo) != digest:
            raise SnapshotError(f"{path} changed while it was being stored (expected {digest})")
        return self._put(digest, data)

    def put_bytes(self, data: bytes) -> str:
        digest = hash_bytes(data, self.algo)
        self._put(digest, bytes(data))
        return digest

    def open(self, digest: str) -> BinaryIO:
        try:
            data = self.blobs[self._checked(digest)]
        except KeyError:
            raise MissingBlobError(digest) from None
        return verifying_reader(
            io.BytesIO(data), digest, self.algo, lambda: self._corrupt(digest, data)
        )

    def _put(self, digest: str, data: bytes) -> bool:
        old = self.blobs.get(digest)
        if old is not None and len(old) == len(data):
            return False
        if old is not None:
            self._set_aside(digest, old)
        self.blobs[digest] = data
        return True

    def _corrupt(self, digest: str, data: bytes) -> CorruptBlobError:
        self._set_aside(digest, data)
        return CorruptBlobError(digest, set_aside=f"set_aside[{digest!r}]")

    def _set_aside(self, digest: str, data: bytes) -> None:
        if self.blobs.get(digest) is data:  # not replaced by intact content meanwhile
            del self.blobs[digest]
            self.set_aside[digest] = data
            self._asides += 1

    def _checked(self, digest: str) -> str:
        if not is_digest(digest, self.algo):
            raise SnapshotError(f"not a valid {self.algo} digest: {digest!r}")
        return digest
