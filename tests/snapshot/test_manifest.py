"""Pure tests of the manifest: serialization, ids, diffing, path safety. No filesystem."""

from __future__ import annotations

import json

import pytest
from snapshot_helpers import AWKWARD_NAMES

from ferry.errors import SnapshotError
from ferry.snapshot import FileEntry, LinkEntry, Manifest, UnsafePathError, diff
from ferry.snapshot.digest import hash_bytes
from ferry.snapshot.manifest import check_layout, link_escapes

A, B, C = (hash_bytes(x) for x in (b"a", b"b", b"c"))


def make(**entries: FileEntry | LinkEntry) -> Manifest:
    return Manifest({k.replace("__", "/"): v for k, v in entries.items()})


def test_round_trip_through_dict_keeps_every_entry_and_the_id() -> None:
    entries: dict[str, FileEntry | LinkEntry] = {
        name: FileEntry(A, 1, 0o644) for name in AWKWARD_NAMES
    }
    entries["sub/run.sh"] = FileEntry(B, 2, 0o755)
    entries["link"] = LinkEntry("sub/run.sh")
    m = Manifest(entries)
    back = Manifest.from_dict(m.to_dict())
    assert back == m
    assert back.snapshot_id == m.snapshot_id
    assert back.entries["link"] == LinkEntry("sub/run.sh")


def test_snapshot_id_is_the_digest_of_the_canonical_json() -> None:
    m = make(x=FileEntry(A, 1))
    assert m.snapshot_id == hash_bytes(m.canonical_json())
    assert b" " not in m.canonical_json()


def test_snapshot_id_ignores_insertion_order_but_not_content_or_mode() -> None:
    one = Manifest({"a": FileEntry(A, 1), "b": FileEntry(B, 1)})
    two = Manifest({"b": FileEntry(B, 1), "a": FileEntry(A, 1)})
    assert one.snapshot_id == two.snapshot_id
    assert list(two.entries) == ["a", "b"]
    assert Manifest({"a": FileEntry(C, 1), "b": FileEntry(B, 1)}).snapshot_id != one.snapshot_id
    assert Manifest({"a": FileEntry(A, 1, 0o755), "b": FileEntry(B, 1)}).snapshot_id != (
        one.snapshot_id
    )


def test_diff_reports_added_removed_and_changed_in_path_order() -> None:
    old = make(keep=FileEntry(A, 1), gone=FileEntry(A, 1), edit=FileEntry(A, 1),
               chmod=FileEntry(A, 1), relink=LinkEntry("keep"), kind=FileEntry(A, 1))  # fmt: skip
    new = make(keep=FileEntry(A, 1), edit=FileEntry(B, 1), chmod=FileEntry(A, 1, 0o755),
               relink=LinkEntry("edit"), kind=LinkEntry("keep"), z_new=FileEntry(C, 1))  # fmt: skip
    d = diff(old, new)
    assert d.added == ("z_new",)
    assert d.removed == ("gone",)
    assert d.changed == ("chmod", "edit", "kind", "relink")
    assert d and not diff(new, new)
    assert diff(new, old).added == ("gone",)


@pytest.mark.parametrize(
    "path", ["../evil", "/etc/passwd", "a/../../b", "a/./b", "a//b", "", ".", "a/", "nul\x00"]
)
def test_from_dict_refuses_unsafe_paths(path: str) -> None:
    data = make(ok=FileEntry(A, 1)).to_dict()
    data["entries"][path] = {"digest": A, "size": 1, "mode": 0o644}
    with pytest.raises(UnsafePathError):
        Manifest.from_dict(data)


@pytest.mark.parametrize(
    "entry",
    [
        {"digest": "zz", "size": 1, "mode": 420},
        {"digest": A, "size": -1, "mode": 420},
        {"digest": A, "size": 1, "mode": 0o4755},
        {"digest": A, "size": 1},
        {"link": 3},
        "nonsense",
    ],
)
def test_from_dict_refuses_malformed_entries(entry: object) -> None:
    data = make(ok=FileEntry(A, 1)).to_dict()
    data["entries"]["x"] = entry
    with pytest.raises(SnapshotError, match="malformed"):
        Manifest.from_dict(data)


def test_from_dict_refuses_other_versions_and_algorithms() -> None:
    data = make(ok=FileEntry(A, 1)).to_dict()
    with pytest.raises(SnapshotError, match="version"):
        Manifest.from_dict({**data, "version": 99})
    with pytest.raises(SnapshotError, match="algorithm"):
        Manifest.from_dict({**data, "algo": "md5"})


def test_layout_refuses_an_entry_below_a_file_or_link() -> None:
    with pytest.raises(UnsafePathError, match="non-folder"):
        check_layout({"a": FileEntry(A, 1), "a/b": FileEntry(A, 1)})
    with pytest.raises(UnsafePathError):
        check_layout({"l": LinkEntry("x"), "l/b/c": FileEntry(A, 1)})
    check_layout({"a/b": FileEntry(A, 1), "a/c": FileEntry(A, 1)})


@pytest.mark.parametrize(
    ("path", "target", "escapes"),
    [
        ("link", "file", False),
        ("link", "sub/file", False),
        ("a/b/link", "../../file", False),
        ("a/link", "./x/../y", True),  # '..' after a component might climb out of a link
        ("link", "../file", True),
        ("a/b/link", "../../../file", True),
        ("link", "/etc/passwd", True),
        ("link", "", True),
        ("link", ".", False),
        ("a/link", "..", False),
    ],
)
def test_link_escapes(path: str, target: str, escapes: bool) -> None:
    assert link_escapes(path, target) is escapes


def test_totals_and_digests() -> None:
    m = make(a=FileEntry(A, 3), b=FileEntry(A, 3), c=FileEntry(B, 4), l=LinkEntry("a"))
    assert m.total_bytes == 10
    assert m.digests == {A, B}
    assert [p for p, _ in m.links()] == ["l"]
    assert hash(m) == hash(Manifest(dict(m.entries)))


def test_fast_canonical_encoding_equals_sorted_compact_json() -> None:
    from ferry.snapshot.manifest import canonical_json

    entries: dict[str, FileEntry | LinkEntry] = {
        name: FileEntry(A, i, 0o755 if i % 2 else 0o644) for i, name in enumerate(AWKWARD_NAMES)
    }
    entries["bad utf-8 \udcff"] = LinkEntry('target "q" \n ü \udcfe')
    entries["z"] = LinkEntry("")
    m = Manifest(entries)
    assert m.canonical_json() == canonical_json(m.to_dict())
    assert Manifest.from_dict(json.loads(m.canonical_json())) == m
