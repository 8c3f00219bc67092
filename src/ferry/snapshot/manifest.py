"""The manifest of a snapshot: relative path -> file content digest (or link target).

Pure data and pure functions: nothing here touches the filesystem. A manifest serializes to one
canonical JSON document; the digest of that document is the snapshot id, so two identical trees
always get the same id and the manifest can be stored as an ordinary blob::

    >>> m = Manifest({"train.py": FileEntry("ab" * 32, 120, 0o644)})
    >>> Manifest.from_dict(m.to_dict()) == m
    True
    >>> diff(m, Manifest({})).removed
    ('train.py',)
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from json.encoder import encode_basestring_ascii
from types import MappingProxyType
from typing import Any

from ferry.agent.store import link_escapes as link_escapes  # one copy, shared with hosts
from ferry.errors import SnapshotError
from ferry.snapshot.digest import DEFAULT_ALGO, check_algo, hash_bytes, is_digest
from ferry.snapshot.errors import UnsafePathError

FORMAT_VERSION = 1
# Modes are normalised like git's: only "executable or not" survives, so the same tree gives the
# same snapshot id whatever the umask of the machine that took it.
REGULAR = 0o644
EXECUTABLE = 0o755


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A regular file: its content digest, size in bytes and mode (0o644 or 0o755)."""

    digest: str
    size: int
    mode: int = REGULAR


@dataclass(frozen=True, slots=True)
class LinkEntry:
    """A symbolic link, recorded by its target text; ferry never follows it."""

    target: str


Entry = FileEntry | LinkEntry


@dataclass(frozen=True, slots=True)
class ManifestDiff:
    """Paths added, removed and changed (content, mode or kind) between two manifests."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def to_dict(self) -> dict[str, list[str]]:
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": list(self.changed),
        }


@dataclass(frozen=True, eq=True)
class Manifest:
    """An immutable, path-sorted mapping of posix relative paths to entries."""

    entries: Mapping[str, Entry]
    algo: str = DEFAULT_ALGO

    def __post_init__(self) -> None:
        entries = self.entries
        ordered = {path: entries[path] for path in sorted(entries)}
        object.__setattr__(self, "entries", MappingProxyType(ordered))
        check_algo(self.algo)

    def __hash__(self) -> int:
        return hash(self.snapshot_id)

    def __len__(self) -> int:
        return len(self.entries)

    def files(self) -> Iterator[tuple[str, FileEntry]]:
        """The regular-file entries, in path order."""
        for path, entry in self.entries.items():
            if isinstance(entry, FileEntry):
                yield path, entry

    def links(self) -> Iterator[tuple[str, LinkEntry]]:
        """The symbolic-link entries, in path order."""
        for path, entry in self.entries.items():
            if isinstance(entry, LinkEntry):
                yield path, entry

    @cached_property
    def total_bytes(self) -> int:
        return sum(e.size for _, e in self.files())

    @cached_property
    def digests(self) -> frozenset[str]:
        """Every distinct blob digest the manifest refers to."""
        return frozenset(e.digest for _, e in self.files())

    def to_dict(self) -> dict[str, Any]:
        entries: dict[str, dict[str, Any]] = {}
        for path, e in self.entries.items():
            if type(e) is FileEntry:
                entries[path] = {"digest": e.digest, "mode": e.mode, "size": e.size}
            else:
                assert isinstance(e, LinkEntry)
                entries[path] = {"link": e.target}
        return {"algo": self.algo, "entries": entries, "version": FORMAT_VERSION}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        """Parse and validate a manifest; a malformed or unsafe one raises SnapshotError."""
        if not isinstance(data, Mapping) or data.get("version") != FORMAT_VERSION:
            raise SnapshotError(f"not a ferry manifest (version {FORMAT_VERSION} expected)")
        algo = data.get("algo")
        raw = data.get("entries")
        if not isinstance(algo, str) or not isinstance(raw, Mapping):
            raise SnapshotError("malformed manifest: 'algo' and 'entries' are required")
        try:
            check_algo(algo)
        except ValueError as exc:
            raise SnapshotError(f"malformed manifest: {exc}") from exc
        entries: dict[str, Entry] = {}
        for path, item in raw.items():
            check_entry_path(path)
            entries[path] = _parse_entry(path, item, algo)
        check_layout(entries)
        return cls(entries, algo)

    def canonical_json(self) -> bytes:
        """The one byte encoding of this manifest whose digest is the snapshot id.

        Byte-for-byte what :func:`canonical_json` gives for :meth:`to_dict`, written directly
        because this runs on every submit (entries are already in sorted order).
        """
        quote = encode_basestring_ascii
        parts: list[str] = []
        for path, e in self.entries.items():
            if type(e) is FileEntry:
                parts.append(
                    f'{quote(path)}:{{"digest":"{e.digest}","mode":{e.mode},"size":{e.size}}}'
                )
            else:
                assert isinstance(e, LinkEntry)
                parts.append(f'{quote(path)}:{{"link":{quote(e.target)}}}')
        body = ",".join(parts)
        return f'{{"algo":{quote(self.algo)},"entries":{{{body}}},"version":{FORMAT_VERSION}}}'.encode()

    @cached_property
    def snapshot_id(self) -> str:
        return hash_bytes(self.canonical_json(), self.algo)


def canonical_json(data: Mapping[str, Any]) -> bytes:
    """Sorted keys, no whitespace, ASCII only (undecodable names survive as escapes)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _parse_entry(path: str, item: object, algo: str) -> Entry:
    if isinstance(item, Mapping) and set(item) == {"link"} and isinstance(item["link"], str):
        return LinkEntry(item["link"])
    if isinstance(item, Mapping) and set(item) == {"digest", "mode", "size"}:
        digest, size, mode = item["digest"], item["size"], item["mode"]
        if (
            is_digest(digest, algo)
            and type(size) is int
            and size >= 0
            and type(mode) is int
            and 0 <= mode <= 0o777
        ):
            return FileEntry(digest, size, mode)
    raise SnapshotError(f"malformed manifest entry for {path!r}: {item!r}")


def diff(old: Manifest, new: Manifest) -> ManifestDiff:
    """What changed from ``old`` to ``new``, each list in path order."""
    before, after = old.entries, new.entries
    added = tuple(p for p in after if p not in before)
    removed = tuple(p for p in before if p not in after)
    changed = tuple(p for p, e in after.items() if p in before and before[p] != e)
    return ManifestDiff(added, removed, changed)


def check_entry_path(path: object) -> str:
    """Return ``path`` if it is a safe relative posix path, else raise UnsafePathError."""
    if not isinstance(path, str) or not path:
        raise UnsafePathError(f"refusing empty or non-text manifest path {path!r}")
    if path.startswith("/") or "\x00" in path:
        raise UnsafePathError(f"refusing absolute manifest path {path!r}")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise UnsafePathError(f"refusing manifest path {path!r}: it has a {part!r} component")
    return path


def check_layout(entries: Mapping[str, Entry]) -> None:
    """Refuse a manifest in which a file or link would also have to be a folder."""
    for path in entries:
        parent = posixpath.dirname(path)
        while parent:
            if parent in entries:
                raise UnsafePathError(
                    f"manifest path {path!r} lies under the non-folder {parent!r}"
                )
            parent = posixpath.dirname(parent)
