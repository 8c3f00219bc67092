"""The local and in-memory stores pass the conformance suite; local-only properties."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from blobstore_contract import BlobStoreContract

from ferry.snapshot import BlobStore, LocalBlobStore, MemoryBlobStore
from ferry.snapshot.digest import hash_bytes


class TestLocalBlobStore(BlobStoreContract):
    @pytest.fixture
    def blob_store(self, tmp_path: Path) -> BlobStore:
        return LocalBlobStore(tmp_path / "blobs")

    def damage(self, store: BlobStore, digest: str, data: bytes) -> None:
        assert isinstance(store, LocalBlobStore)
        path = store.path(digest)
        path.chmod(0o644)
        path.write_bytes(data)


class TestMemoryBlobStore(BlobStoreContract):
    @pytest.fixture
    def blob_store(self) -> BlobStore:
        return MemoryBlobStore()

    def damage(self, store: BlobStore, digest: str, data: bytes) -> None:
        assert isinstance(store, MemoryBlobStore)
        store.blobs[digest] = data


def test_layout_is_two_hex_characters_then_the_rest(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    digest = store.put_bytes(b"layout")
    assert (tmp_path / "blobs" / digest[:2] / digest[2:]).read_bytes() == b"layout"


def test_blobs_are_read_only_and_no_temporary_files_remain(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs", durable=True)
    source = tmp_path / "f"
    source.write_bytes(b"data" * 1000)
    store.put_file(source, hash_bytes(source.read_bytes()))
    digest = store.put_bytes(b"more")
    assert stat.S_IMODE(store.path(digest).stat().st_mode) & 0o222 == 0
    assert os.listdir(tmp_path / "blobs" / "tmp") == []


def test_failed_put_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    source = tmp_path / "f"
    source.write_bytes(b"now")
    with pytest.raises(Exception, match="changed"):
        store.put_file(source, hash_bytes(b"then"))
    assert os.listdir(tmp_path / "blobs" / "tmp") == []


def test_constructor_touches_nothing(tmp_path: Path) -> None:
    LocalBlobStore(tmp_path / "blobs")
    assert not (tmp_path / "blobs").exists()


def test_blake2b_store(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs", algo="blake2b")
    digest = store.put_bytes(b"x")
    assert digest == hash_bytes(b"x", "blake2b") != hash_bytes(b"x", "sha256")
    assert store.read_bytes(digest) == b"x"


def test_unknown_algorithm_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="md5"):
        LocalBlobStore(tmp_path, algo="md5")
