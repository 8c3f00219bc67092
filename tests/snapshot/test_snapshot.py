"""take_snapshot end to end: incremental storing, the stat cache, safety, limits."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path

import pytest
from snapshot_helpers import AWKWARD_NAMES, age, write

from ferry.errors import ConfigError, SnapshotError
from ferry.snapshot import (
    FileEntry,
    LinkEntry,
    LocalBlobStore,
    MemoryBlobStore,
    SnapshotLimitError,
    SnapshotLimits,
    UnreadableFilesError,
    load_manifest,
    take_snapshot,
)
from ferry.snapshot import snapshotter as snapshotter_module
from ferry.snapshot.digest import hash_bytes
from ferry.snapshot.limits import GiB, MiB
from ferry.snapshot.statcache import StatCache


class CountingStore(MemoryBlobStore):
    """Records every write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def put_file(self, path: Path, digest: str) -> bool:
        self.writes.append(digest)
        return super().put_file(path, digest)

    def put_bytes(self, data: bytes) -> str:
        self.writes.append(hash_bytes(data))
        return super().put_bytes(data)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every file take_snapshot reads, by absolute path."""
    seen: list[str] = []
    real = snapshotter_module._hash_file

    def spy(path: str, *args: object) -> tuple[str, int, bytes | None]:
        seen.append(path)
        return real(path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(snapshotter_module, "_hash_file", spy)
    return seen


def names(paths: Iterable[str], root: Path) -> set[str]:
    return {os.path.relpath(p, os.path.realpath(root)) for p in paths}


def test_manifest_covers_every_awkward_file_with_digest_size_and_mode(
    awkward_tree: Path, store: LocalBlobStore, cache_dir: Path
) -> None:
    result = take_snapshot(awkward_tree, store, cache_dir)
    entries = result.manifest.entries
    for name in AWKWARD_NAMES:
        data = (awkward_tree / name).read_bytes()
        assert entries[name] == FileEntry(hash_bytes(data), len(data), 0o644)
    assert entries["run me.sh"].mode == 0o755  # type: ignore[union-attr]
    assert entries["empty"] == FileEntry(hash_bytes(b""), 0, 0o644)
    assert "new\nline dir/dir with space/plain.txt" in entries
    assert result.stats.files == len(entries) and result.stats.new_files > 0
    assert load_manifest(store, result.snapshot_id) == result.manifest


def test_snapshot_id_is_stable_across_stores_and_caches(awkward_tree: Path, tmp_path: Path) -> None:
    one = take_snapshot(awkward_tree, MemoryBlobStore(), tmp_path / "c1")
    two = take_snapshot(awkward_tree, MemoryBlobStore(), tmp_path / "c2")
    assert one.snapshot_id == two.snapshot_id == one.manifest.snapshot_id


def test_unchanged_tree_reads_nothing_and_writes_nothing(
    awkward_tree: Path, cache_dir: Path, reads: list[str]
) -> None:
    store = CountingStore()
    first = take_snapshot(awkward_tree, store, cache_dir)
    assert len(reads) == first.stats.files
    reads.clear()
    store.writes.clear()
    again = take_snapshot(awkward_tree, store, cache_dir)
    assert reads == []
    assert store.writes == []
    assert again.snapshot_id == first.snapshot_id
    assert again.stats.hashed_files == 0 and again.stats.new_bytes == 0 and again.stats.reused


def test_changing_one_file_reads_and_stores_exactly_that_file(
    awkward_tree: Path, cache_dir: Path, reads: list[str]
) -> None:
    store = CountingStore()
    first = take_snapshot(awkward_tree, store, cache_dir)
    target = awkward_tree / "new\nline.txt"
    write(target, "a brand new content of 41 bytes in total\n")
    age(target, 30)
    reads.clear()
    store.writes.clear()
    second = take_snapshot(awkward_tree, store, cache_dir)
    size = target.stat().st_size
    assert names(reads, awkward_tree) == {"new\nline.txt"}
    assert second.stats.new_files == 1 and second.stats.new_bytes == size
    assert second.stats.hashed_files == 1
    new_digest = hash_bytes(target.read_bytes())
    assert store.writes == [new_digest, second.snapshot_id]  # the blob, then the manifest last
    assert second.snapshot_id != first.snapshot_id


def test_touched_file_is_rehashed_but_not_stored_again(
    awkward_tree: Path, cache_dir: Path, reads: list[str]
) -> None:
    store = CountingStore()
    first = take_snapshot(awkward_tree, store, cache_dir)
    os.utime(awkward_tree / "plain.txt", (time.time() - 20, time.time() - 20))
    reads.clear()
    again = take_snapshot(awkward_tree, store, cache_dir)
    assert names(reads, awkward_tree) == {"plain.txt"}
    assert again.snapshot_id == first.snapshot_id and again.stats.new_files == 0


def test_a_file_modified_just_now_is_hashed_again_next_time(
    awkward_tree: Path, cache_dir: Path, reads: list[str]
) -> None:
    store = MemoryBlobStore()
    write(awkward_tree / "fresh.txt", "written within the racy window")
    take_snapshot(awkward_tree, store, cache_dir)
    reads.clear()
    take_snapshot(awkward_tree, store, cache_dir)
    assert names(reads, awkward_tree) == {"fresh.txt"}


def test_same_cache_with_another_store_still_stores_every_blob(
    awkward_tree: Path, tmp_path: Path, cache_dir: Path
) -> None:
    first_store, second_store = MemoryBlobStore(), MemoryBlobStore()
    result = take_snapshot(awkward_tree, first_store, cache_dir)
    again = take_snapshot(awkward_tree, second_store, cache_dir)
    assert again.stats.hashed_files == 0
    assert second_store.has(result.manifest.digests) == set(result.manifest.digests)
    assert load_manifest(second_store, again.snapshot_id) == result.manifest


def test_a_damaged_stat_cache_is_ignored(awkward_tree: Path, cache_dir: Path) -> None:
    store = MemoryBlobStore()
    first = take_snapshot(awkward_tree, store, cache_dir)
    (cache_file,) = cache_dir.iterdir()
    raw = cache_file.read_bytes()
    cache_file.write_bytes(raw.replace(b"[", b"[9", 1))
    again = take_snapshot(awkward_tree, store, cache_dir)
    assert again.stats.hashed_files == again.stats.files
    assert again.snapshot_id == first.snapshot_id
    loaded = StatCache.load(cache_dir, str(Path(os.path.realpath(awkward_tree))), "sha256")
    assert loaded.snapshot_id == first.snapshot_id


def test_symlinks_are_recorded_never_followed(tmp_path: Path, cache_dir: Path) -> None:
    outside = tmp_path / "outside"
    write(outside / "secret.txt", "do not take me")
    src = tmp_path / "src"
    write(src / "real.txt", "x")
    (src / "inside link").symlink_to("real.txt")
    (src / "escape").symlink_to(outside / "secret.txt")
    (src / "dir link").symlink_to(outside, target_is_directory=True)
    (src / "dangling").symlink_to("nowhere")
    warnings: list[str] = []
    result = take_snapshot(src, MemoryBlobStore(), cache_dir, on_warning=warnings.append)
    entries = result.manifest.entries
    assert entries["inside link"] == LinkEntry("real.txt")
    assert entries["escape"] == LinkEntry(str(outside / "secret.txt"))
    assert entries["dir link"] == LinkEntry(str(outside))
    assert entries["dangling"] == LinkEntry("nowhere")
    assert not any("secret" in p for p in entries if p != "escape")
    assert result.stats.files == 1 and result.stats.links == 4
    assert sum("outside the source folder" in w for w in warnings) == 2
    assert warnings == result.warnings


def test_special_files_are_skipped_with_a_warning(tmp_path: Path, cache_dir: Path) -> None:
    src = tmp_path / "s"  # short: unix socket paths are limited to ~100 bytes
    write(src / "a.txt", "x")
    os.mkfifo(src / "a fifo")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(src / "sock"))
        result = take_snapshot(src, MemoryBlobStore(), cache_dir)
    finally:
        sock.close()
    assert set(result.manifest.entries) == {"a.txt"}
    assert any("'a fifo'" in w and "skipped" in w for w in result.warnings)
    assert any("'sock'" in w for w in result.warnings)


def test_unreadable_files_fail_with_their_names_and_nothing_is_stored(
    awkward_tree: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = snapshotter_module._hash_file

    def deny(path: str, *args: object) -> tuple[str, int, bytes | None]:
        rel = os.path.relpath(path, os.path.realpath(awkward_tree))
        if rel in ("with space.txt", "new\nline.txt"):
            raise PermissionError(13, "Permission denied", path)
        return real(path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(snapshotter_module, "_hash_file", deny)
    store = MemoryBlobStore()
    with pytest.raises(UnreadableFilesError) as caught:
        take_snapshot(awkward_tree, store, cache_dir)
    assert sorted(p.split(" (")[0] for p in caught.value.paths) == [
        "new\nline.txt",
        "with space.txt",
    ]
    assert "with space.txt" in str(caught.value)
    assert store.blobs == {}


def test_unreadable_file_on_disk(tmp_path: Path, cache_dir: Path) -> None:
    write(tmp_path / "src/locked.txt", "x", mode=0o000)
    write(tmp_path / "src/ok.txt", "y")
    if os.geteuid() != 0:
        with pytest.raises(UnreadableFilesError, match=r"locked\.txt"):
            take_snapshot(tmp_path / "src", MemoryBlobStore(), cache_dir)
        return
    # root reads anything: take the snapshot in a child whose effective user is 'nobody'
    # (dropping the effective uid clears the capabilities that let root read a 000 file)
    for folder in (tmp_path, *tmp_path.parents):
        if folder == Path("/tmp") or folder == Path("/"):
            break
        folder.chmod(folder.stat().st_mode | 0o005)  # let 'nobody' reach the tree
    (tmp_path / "src").chmod(0o755)
    (tmp_path / "src" / "ok.txt").chmod(0o644)
    (tmp_path / "nobody cache").mkdir(mode=0o777)
    (tmp_path / "nobody cache").chmod(0o777)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 3
        try:
            os.setegid(65534)
            os.seteuid(65534)
            take_snapshot(tmp_path / "src", MemoryBlobStore(), tmp_path / "nobody cache")
        except UnreadableFilesError as exc:
            code = 0 if "locked.txt" in str(exc) else 4
        except BaseException:
            code = 5
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_unreadable_folder_fails_with_its_name(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    write(src / "locked dir/a.txt", "x")
    real_scandir = os.scandir

    def scandir(path: str) -> object:
        if str(path).endswith("locked dir"):
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr("ferry.snapshot.walk.os.scandir", scandir)
    with pytest.raises(UnreadableFilesError, match="locked dir"):
        take_snapshot(src, MemoryBlobStore(), cache_dir)


def test_over_the_file_limit_fails_before_storing_naming_offenders(
    tmp_path: Path, cache_dir: Path, reads: list[str]
) -> None:
    src = tmp_path / "src"
    write(src / ".amlignore", "*.tmp\n")
    for i in range(12):
        write(src / "many files" / f"{i}.txt", "x" * i)
    store = MemoryBlobStore()
    with pytest.raises(SnapshotLimitError) as caught:
        take_snapshot(src, store, cache_dir, SnapshotLimits(max_files=10))
    message = str(caught.value)
    assert "13 files is over the limit of 10" in message
    assert "'many files/'" in message and "(12 files)" in message
    assert ".amlignore" in message  # the ignore file to edit
    assert store.blobs == {} and reads == []


def test_over_the_size_limit_names_the_largest_files(tmp_path: Path, cache_dir: Path) -> None:
    src = tmp_path / "src"
    write(src / "huge data.csv", b"0" * 5000)
    write(src / "small.py", b"1")
    store = MemoryBlobStore()
    with pytest.raises(SnapshotLimitError) as caught:
        take_snapshot(src, store, cache_dir, SnapshotLimits(max_bytes=4096))
    message = str(caught.value)
    assert "'huge data.csv'" in message and "4.0 KiB" in message
    assert message.index("huge data.csv") < message.index("small.py")
    assert ".ferryignore" in message  # no ignore file yet: suggest creating one
    assert store.blobs == {}


def test_a_large_file_is_a_warning_not_an_error(tmp_path: Path, cache_dir: Path) -> None:
    write(tmp_path / "src/model.bin", b"0" * 2048)
    result = take_snapshot(tmp_path / "src", MemoryBlobStore(), cache_dir,
                           SnapshotLimits(warn_file_bytes=1024))  # fmt: skip
    (warning,) = result.warnings
    assert "model.bin" in warning and "outside the source folder" in warning


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert SnapshotLimits.from_env({}) == SnapshotLimits(2 * GiB, 50_000, 100 * MiB)
    env = {"FERRY_SNAPSHOT_MAX_BYTES": "500MB", "FERRY_SNAPSHOT_MAX_FILES": "unlimited"}
    limits = SnapshotLimits.from_env(env)
    assert limits.max_bytes == 500_000_000 and limits.max_files is None
    with pytest.raises(ConfigError, match="FERRY_SNAPSHOT_MAX_FILES"):
        SnapshotLimits.from_env({"FERRY_SNAPSHOT_MAX_FILES": "lots"})
    monkeypatch.setenv("FERRY_SNAPSHOT_MAX_FILES", "1")
    assert SnapshotLimits.from_env().max_files == 1


def test_take_snapshot_uses_environment_limits_by_default(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "src/a", "x")
    write(tmp_path / "src/b", "x")
    monkeypatch.setenv("FERRY_SNAPSHOT_MAX_FILES", "1")
    with pytest.raises(SnapshotLimitError):
        take_snapshot(tmp_path / "src", MemoryBlobStore(), cache_dir)


def test_source_must_be_a_folder(tmp_path: Path, cache_dir: Path) -> None:
    with pytest.raises(SnapshotError, match="not a folder"):
        take_snapshot(tmp_path / "missing", MemoryBlobStore(), cache_dir)


def test_load_manifest_of_a_blob_that_is_not_a_manifest(memory_store: MemoryBlobStore) -> None:
    digest = memory_store.put_bytes(b"just bytes")
    with pytest.raises(SnapshotError, match="not a manifest"):
        load_manifest(memory_store, digest)


def test_the_stat_cache_is_private(awkward_tree: Path, tmp_path: Path) -> None:
    """It lists the source's file names: only the owner may read it (under umask 022 too)."""
    old = os.umask(0o022)
    try:
        take_snapshot(awkward_tree, MemoryBlobStore(), tmp_path / "new cache dir")
    finally:
        os.umask(old)
    (cache_file,) = (tmp_path / "new cache dir").iterdir()
    assert (tmp_path / "new cache dir").stat().st_mode & 0o777 == 0o700
    assert cache_file.stat().st_mode & 0o777 == 0o600
