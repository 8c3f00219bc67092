"""An in-memory blob store: the test double, and a model of the contract in 60 lines."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from ferry.errors import SnapshotError
from ferry.snapshot.blobstore.base import BlobStore, verifying_reader
from ferry.snapshot.digest import DEFAULT_ALGO, check_algo, hash_bytes, is_digest
from ferry.snapshot.errors import MissingBlobError


class MemoryBlobStore(BlobStore):
    """Blobs in a dict; ``blobs`` is public so tests can inspect (or damage) them.

    >>> store = MemoryBlobStore()
    >>> store.has([store.put_bytes(b"x")]) == {hash_bytes(b"x")}
    True
    """

    def __init__(self, algo: str = DEFAULT_ALGO) -> None:
        self.algo = check_algo(algo)
        self.blobs: dict[str, bytes] = {}

    def has(self, digests: Iterable[str]) -> set[str]:
        return {d for d in digests if self._checked(d) in self.blobs}

    def put_file(self, path: Path, digest: str) -> bool:
        self._checked(digest)
        if digest in self.blobs:
            return False
        data = Path(path).read_bytes()
        if hash_bytes(data, self.algo) != digest:
            raise SnapshotError(f"{path} changed while it was being stored (expected {digest})")
        self.blobs[digest] = data
        return True

    def put_bytes(self, data: bytes) -> str:
        digest = hash_bytes(data, self.algo)
        self.blobs.setdefault(digest, bytes(data))
        return digest

    def open(self, digest: str) -> BinaryIO:
        try:
            data = self.blobs[self._checked(digest)]
        except KeyError:
            raise MissingBlobError(digest) from None
        return verifying_reader(io.BytesIO(data), digest, self.algo)

    def _checked(self, digest: str) -> str:
        if not is_digest(digest, self.algo):
            raise SnapshotError(f"not a valid {self.algo} digest: {digest!r}")
        return digest
