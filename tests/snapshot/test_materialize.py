"""Restoring snapshots: byte-identical round trips, and refusal of anything unsafe."""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from pathlib import Path

import pytest
from snapshot_helpers import tree_bytes, write

from ferry.errors import SnapshotError
from ferry.snapshot import (
    CorruptBlobError,
    CorruptBlobsError,
    FileEntry,
    LinkEntry,
    LocalBlobStore,
    Manifest,
    MemoryBlobStore,
    MissingBlobError,
    UnsafePathError,
    load_manifest,
    materialize,
    restore,
    restore_zip,
    take_snapshot,
)


def test_restore_round_trip_is_byte_identical_with_modes(
    awkward_tree: Path, store: LocalBlobStore, cache_dir: Path, tmp_path: Path
) -> None:
    (awkward_tree / "link to script").symlink_to("run me.sh")
    result = take_snapshot(awkward_tree, store, cache_dir)
    out = restore(load_manifest(store, result.snapshot_id), store, tmp_path / "restored here")
    assert out == (tmp_path / "restored here").absolute()
    assert tree_bytes(out) == tree_bytes(awkward_tree)
    assert stat.S_IMODE((out / "run me.sh").stat().st_mode) == 0o755
    assert os.readlink(out / "link to script") == "run me.sh"


def test_materialized_copy_is_independent_of_the_source_and_the_store(
    awkward_tree: Path, store: LocalBlobStore, cache_dir: Path, tmp_path: Path
) -> None:
    result = take_snapshot(awkward_tree, store, cache_dir)
    run_dir = tmp_path / "run"
    materialize(result.manifest, store, run_dir)
    write(awkward_tree / "plain.txt", "edited while the run is queued")
    assert (run_dir / "plain.txt").read_bytes() != b"edited while the run is queued"
    (run_dir / "with space.txt").write_text("the job scribbles on its copy")
    digest = result.manifest.entries["with space.txt"].digest  # type: ignore[union-attr]
    assert store.read_bytes(digest) == (awkward_tree / "with space.txt").read_bytes()


def test_large_trees_restore_with_many_files(tmp_path: Path, cache_dir: Path) -> None:
    src = tmp_path / "src"
    for i in range(300):  # over the threshold where copies run in parallel
        write(src / f"d{i % 7}" / f"f {i}.txt", f"file {i}\n" * (i % 5))
    store = LocalBlobStore(tmp_path / "blobs")
    result = take_snapshot(src, store, cache_dir)
    materialize(result.manifest, store, tmp_path / "out")
    assert tree_bytes(tmp_path / "out") == tree_bytes(src)


@pytest.mark.parametrize("evil", ["../escaped.txt", "/tmp/absolute.txt", "a/../../up.txt"])
def test_traversal_entries_are_refused_before_anything_is_written(
    memory_store: MemoryBlobStore, tmp_path: Path, evil: str
) -> None:
    digest = memory_store.put_bytes(b"payload")
    manifest = Manifest({"fine.txt": FileEntry(digest, 7), evil: FileEntry(digest, 7)})
    dest = tmp_path / "sandbox" / "dest"
    with pytest.raises(UnsafePathError):
        materialize(manifest, memory_store, dest)
    assert not dest.exists()
    assert not (tmp_path / "sandbox" / "escaped.txt").exists()
    assert not Path("/tmp/absolute.txt").exists()
    with pytest.raises(UnsafePathError):
        restore_zip(manifest, memory_store, tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()


def test_a_file_below_a_link_is_refused(memory_store: MemoryBlobStore, tmp_path: Path) -> None:
    digest = memory_store.put_bytes(b"payload")
    outside = tmp_path / "outside"
    outside.mkdir()
    manifest = Manifest({"l": LinkEntry(str(outside)), "l/planted.txt": FileEntry(digest, 7)})
    with pytest.raises(UnsafePathError):
        materialize(manifest, memory_store, tmp_path / "dest")
    assert list(outside.iterdir()) == []


def test_escaping_links_are_skipped_with_a_warning_and_inside_links_kept(
    memory_store: MemoryBlobStore, tmp_path: Path
) -> None:
    digest = memory_store.put_bytes(b"x")
    manifest = Manifest({
        "a/file": FileEntry(digest, 1),
        "a/ok": LinkEntry("file"),
        "a/up ok": LinkEntry("../a/file"),
        "a/abs": LinkEntry("/etc/passwd"),
        "a/climb": LinkEntry("../../etc"),
    })  # fmt: skip
    warnings: list[str] = []
    materialize(manifest, memory_store, tmp_path / "dest", on_warning=warnings.append)
    dest = tmp_path / "dest"
    assert os.readlink(dest / "a/ok") == "file"
    assert (dest / "a/up ok").read_bytes() == b"x"
    assert not os.path.lexists(dest / "a/abs") and not os.path.lexists(dest / "a/climb")
    assert len(warnings) == 2 and all("outside the tree" in w for w in warnings)


def test_destination_must_be_new_or_empty_and_not_a_link(
    memory_store: MemoryBlobStore, tmp_path: Path
) -> None:
    manifest = Manifest({"f": FileEntry(memory_store.put_bytes(b"x"), 1)})
    busy = tmp_path / "busy"
    write(busy / "existing", "mine")
    with pytest.raises(SnapshotError, match="not empty"):
        materialize(manifest, memory_store, busy)
    assert (busy / "existing").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    materialize(manifest, memory_store, tmp_path / "empty")
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(UnsafePathError, match="link"):
        materialize(manifest, memory_store, tmp_path / "link")
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_corrupt_blob_fails_the_restore_and_leaves_nothing_behind(
    awkward_tree: Path, store: LocalBlobStore, cache_dir: Path, tmp_path: Path
) -> None:
    result = take_snapshot(awkward_tree, store, cache_dir)
    digest = result.manifest.entries["data.bin"].digest  # type: ignore[union-attr]
    blob = store.path(digest)
    blob.chmod(0o644)
    blob.write_bytes(b"bit rot")
    with pytest.raises(CorruptBlobError, match=digest):
        materialize(result.manifest, store, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
    with pytest.raises(MissingBlobError, match=f"{digest}.*set aside"):
        restore_zip(result.manifest, store, tmp_path / "out.zip")
    assert not (tmp_path / "out.zip").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_every_corrupt_blob_is_found_in_one_restore(
    awkward_tree: Path, store: LocalBlobStore, cache_dir: Path, tmp_path: Path
) -> None:
    result = take_snapshot(awkward_tree, store, cache_dir)
    bad = sorted({e.digest for _, e in result.manifest.files() if e.size > 0})[:3]
    for digest in bad:
        store.path(digest).chmod(0o600)
        store.path(digest).write_bytes(b"rot")
    with pytest.raises(CorruptBlobsError) as caught:
        materialize(result.manifest, store, tmp_path / "dest")
    assert sorted(e.digest for e in caught.value.errors) == bad
    assert "3 blobs are corrupt" in str(caught.value) and "submit from the source" in str(
        caught.value
    )
    assert store.has(bad) == set()  # all set aside at once: one resubmit heals them all


def test_a_corrupt_blob_found_by_a_zip_restore_is_set_aside(
    awkward_tree: Path, store: LocalBlobStore, cache_dir: Path, tmp_path: Path
) -> None:
    result = take_snapshot(awkward_tree, store, cache_dir)
    digest = result.manifest.entries["plain.txt"].digest  # type: ignore[union-attr]
    store.path(digest).chmod(0o600)
    store.path(digest).write_bytes(store.path(digest).read_bytes().upper())  # same size
    with pytest.raises(CorruptBlobError, match="set aside"):
        restore_zip(result.manifest, store, tmp_path / "out.zip")
    assert not (tmp_path / "out.zip").exists() and store.has([digest]) == set()


def test_zip_round_trip_keeps_bytes_modes_and_inside_links(
    awkward_tree: Path, store: LocalBlobStore, cache_dir: Path, tmp_path: Path
) -> None:
    (awkward_tree / "link").symlink_to("plain.txt")
    result = take_snapshot(awkward_tree, store, cache_dir)
    path = restore_zip(result.manifest, store, tmp_path / "snap shot.zip")
    with zipfile.ZipFile(path) as archive:
        infos = {i.filename: i for i in archive.infolist()}
        assert set(infos) == set(result.manifest.entries)
        for rel, entry in result.manifest.files():
            assert archive.read(rel) == (awkward_tree / rel).read_bytes()
            assert stat.S_IMODE(infos[rel].external_attr >> 16) == entry.mode
        assert stat.S_ISLNK(infos["link"].external_attr >> 16)
        assert archive.read("link") == b"plain.txt"
    again = restore_zip(result.manifest, store, tmp_path / "again.zip")
    assert again.read_bytes() == path.read_bytes()  # deterministic archive


def test_a_snapshot_restores_after_the_source_folder_is_deleted(
    awkward_tree: Path, store: LocalBlobStore, cache_dir: Path, tmp_path: Path
) -> None:
    expected = tree_bytes(awkward_tree)
    snapshot_id = take_snapshot(awkward_tree, store, cache_dir).snapshot_id
    shutil.rmtree(awkward_tree)
    out = restore(load_manifest(store, snapshot_id), store, tmp_path / "rerun")
    assert tree_bytes(out) == expected


def test_a_manifest_of_another_algorithm_is_refused(tmp_path: Path) -> None:
    blake = MemoryBlobStore("blake2b")
    manifest = Manifest({"f": FileEntry(blake.put_bytes(b"x"), 1)}, algo="blake2b")
    with pytest.raises(SnapshotError, match="blake2b manifest"):
        materialize(manifest, MemoryBlobStore(), tmp_path / "dest")
    materialize(manifest, blake, tmp_path / "dest")
    assert (tmp_path / "dest/f").read_bytes() == b"x"
