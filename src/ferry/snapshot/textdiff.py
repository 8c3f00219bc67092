"""A git-style unified diff between two snapshots, for ``ferry runs diff RUN_A RUN_B``.

Text files get a unified diff; binary files (a NUL byte, or not UTF-8) and very large files get a
one-line "differ" notice; links show their target; mode changes are reported like git does::

    print(unified_diff(load_manifest(store, a), load_manifest(store, b), store))
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from ferry.snapshot.blobstore.base import BlobStore
from ferry.snapshot.manifest import Entry, FileEntry, Manifest, diff

MAX_TEXT_BYTES = 2 << 20  # above this a line diff is slow and unreadable anyway
_LINK_MODE = 0o120000
_FILE_TYPE = 0o100000


def unified_diff(old: Manifest, new: Manifest, store: BlobStore, *, context: int = 3) -> str:
    """The changes from ``old`` to ``new`` as one text (empty when the trees are equal)."""
    changes = diff(old, new)
    paths = sorted({*changes.added, *changes.removed, *changes.changed})
    out: list[str] = []
    for path in paths:
        out.extend(_file_diff(path, old.entries.get(path), new.entries.get(path), store, context))
    return "".join(out)


def _file_diff(
    path: str, before: Entry | None, after: Entry | None, store: BlobStore, context: int
) -> Iterator[str]:
    a_name, b_name = _quote("a/" + path), _quote("b/" + path)
    yield f"diff --ferry {a_name} {b_name}\n"
    old_mode, new_mode = _mode(before), _mode(after)
    if before is None:
        yield f"new file mode {new_mode:o}\n"
    elif after is None:
        yield f"deleted file mode {old_mode:o}\n"
    elif old_mode != new_mode:
        yield f"old mode {old_mode:o}\nnew mode {new_mode:o}\n"
    if _same_content(before, after):
        return  # a mode change only
    from_name = a_name if before is not None else "/dev/null"
    to_name = b_name if after is not None else "/dev/null"
    if max(_size(before), _size(after)) > MAX_TEXT_BYTES:
        yield f"Files {from_name} and {to_name} differ (too large for a text diff)\n"
        return
    old_data, new_data = _content(before, store), _content(after, store)
    old_text, new_text = _text(old_data), _text(new_data)
    if old_text is None or new_text is None:
        yield f"Binary files {from_name} and {to_name} differ\n"
        return
    lines = difflib.unified_diff(
        old_text.splitlines(keepends=True),
        new_text.splitlines(keepends=True),
        fromfile=from_name,
        tofile=to_name,
        n=context,
    )
    for line in lines:
        if line.endswith("\n"):
            yield line
        else:
            yield line + "\n\\ No newline at end of file\n"


def _mode(entry: Entry | None) -> int:
    if entry is None:
        return 0
    return _FILE_TYPE | entry.mode if isinstance(entry, FileEntry) else _LINK_MODE


def _same_content(before: Entry | None, after: Entry | None) -> bool:
    if isinstance(before, FileEntry) and isinstance(after, FileEntry):
        return before.digest == after.digest
    return before == after


def _size(entry: Entry | None) -> int:
    return entry.size if isinstance(entry, FileEntry) else 0


def _content(entry: Entry | None, store: BlobStore) -> bytes:
    if entry is None:
        return b""
    if isinstance(entry, FileEntry):
        return store.read_bytes(entry.digest)
    return entry.target.encode("utf-8", "surrogateescape")


def _text(data: bytes) -> str | None:
    if b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _quote(name: str) -> str:
    """Quote a path the way git does when it holds quotes, backslashes or control characters."""
    if not any(c in '"\\' or ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return name
    escapes = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
    body = "".join(
        escapes.get(c, f"\\{ord(c):03o}" if ord(c) < 0x20 or ord(c) == 0x7F else c) for c in name
    )
    return f'"{body}"'
