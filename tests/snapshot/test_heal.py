"""A corrupt blob is replaced by the next snapshot of the intact source (issue 9, D4/M3).

Each test plays a user's sequence: submit (``take_snapshot``), the store is damaged, a run
materialises and fails with a message saying what to do, the user submits again, and the run
works. The stat cache is kept between snapshots, as in the real submit path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from snapshot_helpers import age, tree_bytes, write

from ferry.snapshot import (
    CorruptBlobError,
    LocalBlobStore,
    MissingBlobError,
    load_manifest,
    materialize,
    restore,
    take_snapshot,
)


def damage_same_size(blob: Path) -> None:
    blob.chmod(0o600)
    data = blob.read_bytes()
    blob.write_bytes(bytes(b ^ 0xFF for b in data))


def truncate(blob: Path) -> None:
    blob.chmod(0o600)
    with blob.open("r+b") as handle:
        handle.truncate(blob.stat().st_size // 2)


@pytest.mark.parametrize("damage", [damage_same_size, truncate], ids=["altered", "truncated"])
def test_after_one_failed_materialise_the_next_snapshot_heals_the_store(
    awkward_tree: Path,
    store: LocalBlobStore,
    cache_dir: Path,
    tmp_path: Path,
    damage: Callable[[Path], None],
) -> None:
    first = take_snapshot(awkward_tree, store, cache_dir)
    digest = first.manifest.entries["data.bin"].digest  # type: ignore[union-attr]
    damage(store.path(digest))

    again = take_snapshot(awkward_tree, store, cache_dir)  # unchanged tree: nothing is read
    assert again.stats.reused and again.snapshot_id == first.snapshot_id
    with pytest.raises(CorruptBlobError, match=digest) as caught:
        materialize(load_manifest(store, again.snapshot_id), store, tmp_path / "run 1")
    message = str(caught.value)
    assert "set aside" in message and "submit from the source folder again" in message

    healed = take_snapshot(awkward_tree, store, cache_dir)
    assert healed.snapshot_id == first.snapshot_id
    assert (
        healed.stats.new_files == 1
        and healed.stats.new_bytes == (awkward_tree / "data.bin").stat().st_size
    )
    assert healed.stats.hashed_files == 0  # healed from the stat cache's digests, no rehash
    materialize(load_manifest(store, healed.snapshot_id), store, tmp_path / "run 2")
    assert tree_bytes(tmp_path / "run 2") == tree_bytes(awkward_tree)


def test_a_truncated_blob_of_a_changed_file_is_rewritten_at_snapshot_time(
    awkward_tree: Path, store: LocalBlobStore, cache_dir: Path, tmp_path: Path
) -> None:
    """Content that comes back (an undo, a branch switch) finds its old blob truncated: the
    size check catches it while storing, before any run fails."""
    original = (awkward_tree / "plain.txt").read_bytes()
    first = take_snapshot(awkward_tree, store, cache_dir)
    digest = first.manifest.entries["plain.txt"].digest  # type: ignore[union-attr]
    write(awkward_tree / "plain.txt", "an edit")
    age(awkward_tree / "plain.txt", 30)
    take_snapshot(awkward_tree, store, cache_dir)
    truncate(store.path(digest))
    write(awkward_tree / "plain.txt", original)  # the edit is undone
    age(awkward_tree / "plain.txt", 20)
    back = take_snapshot(awkward_tree, store, cache_dir)
    assert back.snapshot_id == first.snapshot_id and back.stats.new_files == 1
    assert store.read_bytes(digest) == original
    restore(load_manifest(store, back.snapshot_id), store, tmp_path / "out")
    assert (tmp_path / "out" / "plain.txt").read_bytes() == original


def test_a_snapshot_with_a_new_stat_cache_checks_every_blob_size(
    awkward_tree: Path, store: LocalBlobStore, cache_dir: Path, tmp_path: Path
) -> None:
    first = take_snapshot(awkward_tree, store, cache_dir)
    digest = first.manifest.entries["data.bin"].digest  # type: ignore[union-attr]
    truncate(store.path(digest))
    other = take_snapshot(awkward_tree, store, tmp_path / "another cache")
    assert other.stats.new_files == 1 and not other.stats.reused
    materialize(first.manifest, store, tmp_path / "out")


def test_a_corrupt_manifest_is_set_aside_and_stored_again(
    awkward_tree: Path, store: LocalBlobStore, cache_dir: Path, tmp_path: Path
) -> None:
    first = take_snapshot(awkward_tree, store, cache_dir)
    damage_same_size(store.path(first.snapshot_id))
    with pytest.raises(CorruptBlobError, match="set aside"):
        load_manifest(store, first.snapshot_id)
    again = take_snapshot(awkward_tree, store, cache_dir)
    assert not again.stats.reused and again.stats.new_files == 0
    assert load_manifest(store, again.snapshot_id) == first.manifest


def test_a_rerun_before_the_resubmit_says_how_to_recover(
    awkward_tree: Path, store: LocalBlobStore, cache_dir: Path, tmp_path: Path
) -> None:
    """A rerun reuses the stored snapshot as it is: until the source is submitted again, the
    set-aside blob is missing, and the error says so."""
    first = take_snapshot(awkward_tree, store, cache_dir)
    digest = first.manifest.entries["run me.sh"].digest  # type: ignore[union-attr]
    damage_same_size(store.path(digest))
    with pytest.raises(CorruptBlobError):
        materialize(first.manifest, store, tmp_path / "run 1")
    with pytest.raises(MissingBlobError, match=r"set aside .*submit from the source folder"):
        materialize(load_manifest(store, first.snapshot_id), store, tmp_path / "rerun")
    take_snapshot(awkward_tree, store, cache_dir)
    materialize(load_manifest(store, first.snapshot_id), store, tmp_path / "rerun after")
    assert os.access(tmp_path / "rerun after" / "run me.sh", os.X_OK)


def test_a_blob_set_aside_through_one_project_is_stored_again_by_another(
    store: LocalBlobStore, tmp_path: Path
) -> None:
    """Two source folders share a file: the corrupt blob is found through one project's run,
    and the other project's next (unchanged, cached) snapshot must store it again too."""
    shared = b"import numpy as np\n" * 50
    for project in ("a", "b"):
        write(tmp_path / project / "common.py", shared)
        write(tmp_path / project / f"{project}.py", f"print({project!r})\n")
        age(tmp_path / project)
    snap_a = take_snapshot(tmp_path / "a", store, tmp_path / "cache")
    snap_b = take_snapshot(tmp_path / "b", store, tmp_path / "cache")
    digest = snap_a.manifest.entries["common.py"].digest  # type: ignore[union-attr]
    damage_same_size(store.path(digest))
    with pytest.raises(CorruptBlobError):
        materialize(snap_a.manifest, store, tmp_path / "run a")
    again_b = take_snapshot(tmp_path / "b", store, tmp_path / "cache")
    assert again_b.snapshot_id == snap_b.snapshot_id and again_b.stats.new_files == 1
    materialize(snap_b.manifest, store, tmp_path / "run b")
    assert (tmp_path / "run b" / "common.py").read_bytes() == shared
