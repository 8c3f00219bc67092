"""Blob stores: the contract (:mod:`.base`) and its implementations."""

from ferry.snapshot.blobstore.base import BlobStore
from ferry.snapshot.blobstore.local import LocalBlobStore
from ferry.snapshot.blobstore.memory import MemoryBlobStore

__all__ = ["BlobStore", "LocalBlobStore", "MemoryBlobStore"]
