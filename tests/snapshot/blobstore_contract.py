"""The blob store conformance suite: every BlobStore implementation must pass it.

Subclass :class:`BlobStoreContract` in a test module and provide a ``blob_store`` fixture (and
a ``damage`` method that overwrites a stored blob's bytes, to prove reads are verified).
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ferry.errors import SnapshotError
from ferry.snapshot import BlobStore, CorruptBlobError, MissingBlobError
from ferry.snapshot.digest import hash_bytes


class BlobStoreContract:
    """Behaviour shared by all stores."""

    def damage(self, store: BlobStore, digest: str, data: bytes) -> None:
        raise NotImplementedError

    def test_put_bytes_then_read_back(self, blob_store: BlobStore) -> None:
        digest = blob_store.put_bytes(b"hello")
        assert digest == hash_bytes(b"hello", blob_store.algo)
        assert blob_store.read_bytes(digest) == b"hello"
        with blob_store.open(digest) as reader:
            assert reader.read() == b"hello"

    def test_has_returns_only_the_present_subset(self, blob_store: BlobStore) -> None:
        present = blob_store.put_bytes(b"a")
        absent = hash_bytes(b"b", blob_store.algo)
        assert blob_store.has([present, absent]) == {present}
        assert blob_store.has([]) == set()

    def test_put_file_is_new_once(self, blob_store: BlobStore, tmp_path: Path) -> None:
        path = tmp_path / "big file"
        data = bytes(range(256)) * 8192  # 2 MiB: more than one read chunk
        path.write_bytes(data)
        digest = hash_bytes(data, blob_store.algo)
        assert blob_store.put_file(path, digest) is True
        assert blob_store.put_file(path, digest) is False
        assert blob_store.read_bytes(digest) == data

    def test_put_file_refuses_content_that_does_not_match(
        self, blob_store: BlobStore, tmp_path: Path
    ) -> None:
        path = tmp_path / "f"
        path.write_bytes(b"changed since hashing")
        wrong = hash_bytes(b"original", blob_store.algo)
        with pytest.raises(SnapshotError, match="changed"):
            blob_store.put_file(path, wrong)
        assert blob_store.has([wrong]) == set()

    @pytest.mark.parametrize("bad", ["../../etc/passwd", "AB" * 32, "ab", "", "g" * 64])
    def test_malformed_digests_are_refused(self, blob_store: BlobStore, bad: str) -> None:
        with pytest.raises(SnapshotError, match="digest"):
            blob_store.has([bad])
        with pytest.raises(SnapshotError, match="digest"):
            blob_store.read_bytes(bad)

    def test_missing_blob_is_an_error_naming_it(self, blob_store: BlobStore) -> None:
        digest = hash_bytes(b"never stored", blob_store.algo)
        with pytest.raises(MissingBlobError, match=digest):
            blob_store.read_bytes(digest)

    @pytest.mark.parametrize("read", ["read_bytes", "open", "link_or_copy"])
    def test_a_corrupt_blob_is_detected_set_aside_and_stored_again(
        self, blob_store: BlobStore, tmp_path: Path, read: str
    ) -> None:
        digest = blob_store.put_bytes(b"good bytes")
        self.damage(blob_store, digest, b"evil bytes")  # same size: only a read can tell
        mark = blob_store.aside_mark()
        dest = tmp_path / "copy"
        with pytest.raises(CorruptBlobError, match=digest) as caught:
            if read == "read_bytes":
                blob_store.read_bytes(digest)
            elif read == "open":
                with blob_store.open(digest) as reader:
                    reader.read()
            else:
                blob_store.link_or_copy(digest, dest, 0o644)
        assert not dest.exists()
        assert "set aside" in str(caught.value) and "submit" in str(caught.value)
        assert caught.value.set_aside is not None
        assert blob_store.has([digest]) == set()  # no longer "exists" ...
        assert blob_store.aside_mark() != mark  # ... and snapshotters are told
        assert blob_store.put_bytes(b"good bytes") == digest  # so the intact content goes in
        assert blob_store.read_bytes(digest) == b"good bytes"

    def test_a_blob_of_the_wrong_size_is_lacking_and_set_aside(
        self, blob_store: BlobStore, tmp_path: Path
    ) -> None:
        digest = blob_store.put_bytes(b"complete content")
        kept = blob_store.put_bytes(b"untouched")
        absent = hash_bytes(b"never stored", blob_store.algo)
        self.damage(blob_store, digest, b"compl")  # truncated
        mark = blob_store.aside_mark()
        sizes = {digest: len(b"complete content"), kept: len(b"untouched"), absent: 12}
        assert blob_store.lacking(sizes) == {digest, absent}
        assert blob_store.has([digest, kept]) == {kept}
        assert blob_store.aside_mark() != mark
        source = tmp_path / "source"
        source.write_bytes(b"complete content")
        assert blob_store.put_file(source, digest) is True
        assert blob_store.read_bytes(digest) == b"complete content"
        assert blob_store.lacking(sizes) == {absent}

    @pytest.mark.parametrize("how", ["put_bytes", "put_file"])
    def test_a_put_replaces_a_blob_of_the_wrong_size(
        self, blob_store: BlobStore, tmp_path: Path, how: str
    ) -> None:
        data = b"the whole file, not just its start"
        digest = blob_store.put_bytes(data)
        self.damage(blob_store, digest, data[:7])
        if how == "put_bytes":
            blob_store.put_bytes(data)
        else:
            (tmp_path / "f").write_bytes(data)
            assert blob_store.put_file(tmp_path / "f", digest) is True
        assert blob_store.read_bytes(digest) == data

    def test_link_or_copy_makes_an_independent_file_with_the_mode(
        self, blob_store: BlobStore, tmp_path: Path
    ) -> None:
        digest = blob_store.put_bytes(b"#!/bin/sh\n")
        dest = tmp_path / "run me.sh"
        blob_store.link_or_copy(digest, dest, 0o755)
        assert dest.read_bytes() == b"#!/bin/sh\n"
        assert stat.S_IMODE(dest.stat().st_mode) == 0o755
        with dest.open("ab") as out:  # a job writing to its copy ...
            out.write(b"rm -rf /\n")
        assert blob_store.read_bytes(digest) == b"#!/bin/sh\n"  # ... leaves the store intact

    def test_link_or_copy_never_overwrites_or_follows_a_link(
        self, blob_store: BlobStore, tmp_path: Path
    ) -> None:
        digest = blob_store.put_bytes(b"x")
        victim = tmp_path / "victim"
        victim.write_bytes(b"precious")
        (tmp_path / "trap").symlink_to(victim)
        with pytest.raises(OSError):
            blob_store.link_or_copy(digest, tmp_path / "trap", 0o644)
        assert victim.read_bytes() == b"precious"
