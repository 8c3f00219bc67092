"""The local and in-memory stores pass the conformance suite; local-only properties."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from blobstore_contract import BlobStoreContract

from ferry.snapshot import (
    BlobStore,
    CorruptBlobError,
    LocalBlobStore,
    MemoryBlobStore,
    MissingBlobError,
)
from ferry.snapshot.blobstore.local import ABANDONED_SECONDS
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


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The common umask, under which a plain mkdir/open would give 0755 folders, 0644 files."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_the_store_is_private_to_its_owner(tmp_path: Path, umask_022: None) -> None:
    store = LocalBlobStore(tmp_path / "blobs", durable=True)
    source = tmp_path / "f"
    source.write_bytes(b"data" * 1000)
    store.put_file(source, hash_bytes(source.read_bytes()))
    digest = store.put_bytes(b"more")
    assert mode(store.path(digest)) == 0o400  # not 0444: others cannot read the source
    assert mode(tmp_path / "blobs") == 0o700
    assert mode(store.path(digest).parent) == 0o700
    assert mode(tmp_path / "blobs" / "tmp") == 0o700
    assert os.listdir(tmp_path / "blobs" / "tmp") == []
    store.path(digest).chmod(0o600)
    store.path(digest).write_bytes(b"rot!")
    with pytest.raises(CorruptBlobError):
        store.read_bytes(digest)
    assert mode(store.aside_dir) == 0o700
    assert [mode(p) for p in store.aside_dir.iterdir()] == [0o600]


def test_temporary_files_are_created_private(tmp_path: Path, umask_022: None) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    tmp, fd = store._temp()
    os.close(fd)
    assert mode(tmp) == 0o600


def test_abandoned_temporary_files_are_removed_when_the_store_is_written(tmp_path: Path) -> None:
    folder = tmp_path / "blobs" / "tmp"
    folder.mkdir(parents=True)
    old = time.time() - ABANDONED_SECONDS - 60
    for name, data in [("killed-empty", b""), ("killed-half", b"half a blob")]:
        (folder / name).write_bytes(data)
        os.utime(folder / name, (old, old))
    (folder / "being-written").write_bytes(b"a live writer's file")  # recent: kept
    store = LocalBlobStore(tmp_path / "blobs")
    store.has([hash_bytes(b"x")])  # reading does not tidy
    assert len(os.listdir(folder)) == 3
    store.put_bytes(b"x")
    assert sorted(os.listdir(folder)) == ["being-written"]


def test_a_corrupt_blob_goes_to_corrupt_named_by_digest_and_time(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    digest = store.put_bytes(b"original")
    store.path(digest).chmod(0o600)
    store.path(digest).write_bytes(b"tampered")
    with pytest.raises(CorruptBlobError) as caught:
        store.read_bytes(digest)
    (aside,) = store.aside_dir.iterdir()
    assert aside.name.startswith(f"{digest}.") and aside.read_bytes() == b"tampered"
    assert caught.value.set_aside == str(aside)
    assert str(aside) in str(caught.value)
    # A later read (a rerun of the same snapshot) says where it went and what to do.
    with pytest.raises(MissingBlobError, match=r"set aside as .*submit from the source folder"):
        store.read_bytes(digest)


def test_a_blob_that_cannot_be_set_aside_is_named_with_the_fix(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    digest = store.put_bytes(b"original")
    store.path(digest).chmod(0o600)
    store.path(digest).write_bytes(b"tampered")
    store.aside_dir.write_bytes(b"")  # a file where the folder should be: the move fails
    with pytest.raises(CorruptBlobError, match="Delete that file, then submit") as caught:
        store.read_bytes(digest)
    assert caught.value.set_aside is None and str(store.path(digest)) in str(caught.value)


def test_a_link_in_place_of_a_blob_is_not_followed_but_set_aside(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    digest = store.put_bytes(b"original")
    outside = tmp_path / "outside"
    outside.write_bytes(b"original")  # even the right bytes: a link is not ours
    store.path(digest).unlink()
    store.path(digest).symlink_to(outside)
    with pytest.raises(CorruptBlobError, match="set aside"):
        store.read_bytes(digest)
    assert store.has([digest]) == set() and outside.read_bytes() == b"original"


def test_a_blob_replaced_meanwhile_is_not_set_aside(tmp_path: Path) -> None:
    """A reader that found the old, corrupt file must not move the intact copy another
    snapshot has just put in its place."""
    store = LocalBlobStore(tmp_path / "blobs")
    digest = store.put_bytes(b"original")
    store.path(digest).chmod(0o600)
    store.path(digest).write_bytes(b"tampered")
    with store.open(digest) as reader:
        other = LocalBlobStore(tmp_path / "blobs")
        assert other.lacking({digest: 8}) == set()  # same size: a stat cannot tell
        store.path(digest).unlink()
        other.put_bytes(b"original")  # the intact content, stored by someone else
        with pytest.raises(CorruptBlobError):
            reader.read()
    assert store.read_bytes(digest) == b"original"


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
