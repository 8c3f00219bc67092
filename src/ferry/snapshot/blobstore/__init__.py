"""Blob stores: the contract (:mod:`.base`) and its implementations.

:class:`RemoteBlobStore` (a bucket, :mod:`.remote`) and :func:`open_blob_store` are imported
when first named: they bring fsspec and the database errors, which a local snapshot never needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferry.snapshot.blobstore.base import BlobStore
from ferry.snapshot.blobstore.local import LocalBlobStore
from ferry.snapshot.blobstore.memory import MemoryBlobStore

if TYPE_CHECKING:
    from ferry.snapshot.blobstore.remote import RemoteBlobStore, open_blob_store

__all__ = ["BlobStore", "LocalBlobStore", "MemoryBlobStore", "RemoteBlobStore", "open_blob_store"]
_LAZY = {"RemoteBlobStore", "open_blob_store"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from ferry.snapshot.blobstore import remote

        return getattr(remote, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
