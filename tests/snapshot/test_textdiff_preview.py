"""unified_diff between snapshots, and preview() of a source folder."""

from __future__ import annotations

from pathlib import Path

from snapshot_helpers import write

from ferry.snapshot import (
    FileEntry,
    LinkEntry,
    Manifest,
    MemoryBlobStore,
    SnapshotLimits,
    preview,
    take_snapshot,
    unified_diff,
)


def manifest_of(store: MemoryBlobStore, files: dict[str, bytes | str]) -> Manifest:
    entries: dict[str, FileEntry | LinkEntry] = {}
    for path, data in files.items():
        if isinstance(data, str):
            entries[path] = LinkEntry(data)
        else:
            entries[path] = FileEntry(store.put_bytes(data), len(data))
    return Manifest(entries)


def test_text_changes_are_a_unified_diff(memory_store: MemoryBlobStore) -> None:
    old = manifest_of(memory_store, {"train.py": b"a = 1\nb = 2\nc = 3\n", "same": b"s"})
    new = manifest_of(memory_store, {"train.py": b"a = 1\nb = 20\nc = 3\n", "same": b"s"})
    text = unified_diff(old, new, memory_store)
    assert "--- a/train.py\n+++ b/train.py\n" in text
    assert "-b = 2\n+b = 20\n" in text
    assert "same" not in text


def test_added_removed_binary_and_no_final_newline(memory_store: MemoryBlobStore) -> None:
    old = manifest_of(memory_store, {"gone.txt": b"bye\n", "img.png": b"\x89PNG\x00\x01"})
    new = manifest_of(memory_store, {"new.txt": b"hello", "img.png": b"\x89PNG\x00\x02"})
    text = unified_diff(old, new, memory_store)
    assert "--- /dev/null\n+++ b/new.txt\n" in text and "new file mode 100644" in text
    assert "+hello\n\\ No newline at end of file\n" in text
    assert "--- a/gone.txt\n+++ /dev/null\n" in text and "-bye\n" in text
    assert "Binary files a/img.png and b/img.png differ\n" in text
    assert unified_diff(new, new, memory_store) == ""


def test_mode_and_link_changes_and_awkward_names(memory_store: MemoryBlobStore) -> None:
    data = memory_store.put_bytes(b"#!/bin/sh\n")
    old = Manifest({"run me.sh": FileEntry(data, 10, 0o644), "new\nline": LinkEntry("a")})
    new = Manifest({"run me.sh": FileEntry(data, 10, 0o755), "new\nline": LinkEntry("b")})
    text = unified_diff(old, new, memory_store)
    assert "old mode 100644\nnew mode 100755\n" in text
    assert '"a/new\\nline"' in text  # quoted like git, so the header stays one line
    assert "-a\n\\ No newline at end of file\n+b\n" in text


def test_preview_counts_what_each_rule_removed(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write(src / "train.py", b"x" * 10)
    write(src / "big model.bin", b"x" * 1000)
    write(src / ".git/objects/ab", b"x" * 100)
    write(src / ".git/HEAD", b"x" * 5)
    write(src / "outputs/m.pt", b"x" * 7)
    write(src / "data/a.csv", b"x" * 300)
    write(src / "data/b.csv", b"x" * 200)
    write(src / "sub/.amlignore", "*.log\n")
    write(src / "sub/run.log", b"x" * 3)
    write(src / ".gitignore", "data/\n")
    p = preview(src)
    assert p.files == 4  # train.py, big model.bin, .gitignore, sub/.amlignore
    assert p.bytes == 10 + 1000 + len("data/\n") + len("*.log\n")
    assert p.largest[0] == ("big model.bin", 1000)
    effects = {(e.source, e.pattern): (e.files, e.bytes) for e in p.removed}
    assert effects == {
        ("default", ".git/"): (2, 105),
        ("default", "outputs/"): (1, 7),
        (".gitignore", "data/"): (2, 500),
        ("sub/.amlignore", "*.log"): (1, 3),
    }
    by_source = {e.source: (e.files, e.bytes) for e in p.removed_by_source}
    assert by_source == {"default": (3, 112), ".gitignore": (2, 500), "sub/.amlignore": (1, 3)}
    assert p.ignore_files == (".gitignore", "sub/.amlignore") and p.ok
    report = p.format()
    assert "'data/' (.gitignore)" in report and "big model.bin" in report
    assert p.to_dict()["largest"][0] == {"path": "big model.bin", "bytes": 1000}


def test_preview_reports_limit_problems_without_storing(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write(src / "a", b"x" * 100)
    write(src / "b", b"x")
    p = preview(src, SnapshotLimits(max_bytes=50, warn_file_bytes=10))
    assert not p.ok and p.problems and "'a'" in (p.error or "")
    assert any("outside the source folder" in w for w in p.warnings)
    store = MemoryBlobStore()
    ok = take_snapshot(src, store, tmp_path / "cache", SnapshotLimits(max_bytes=None))
    assert ok.stats.files == p.files
