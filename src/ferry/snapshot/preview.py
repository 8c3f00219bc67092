"""What a snapshot would hold, and why: the walk and the limits, without reading or storing.

``ferry snapshot preview [DIR]`` renders :meth:`SnapshotPreview.format`; ``--json`` prints
:meth:`SnapshotPreview.to_dict`::

    >>> p = preview(Path("."))                                       # doctest: +SKIP
    >>> p.files, p.bytes, p.removed_by_source[0].source              # doctest: +SKIP
    (42, 81234, 'default')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ferry.snapshot.limits import SnapshotLimits, folders, format_bytes, largest, limit_message
from ferry.snapshot.walk import walk

_TOP = 10


@dataclass(frozen=True, slots=True)
class RuleEffect:
    """Files and bytes one ignore pattern (``pattern``) or one rule source left out."""

    source: str
    pattern: str
    files: int
    bytes: int


@dataclass(frozen=True, slots=True)
class SnapshotPreview:
    """The would-be snapshot of ``source_dir`` and everything that shaped it."""

    source_dir: str
    files: int
    bytes: int
    links: int
    largest: tuple[tuple[str, int], ...]
    largest_folders: tuple[tuple[str, int, int], ...]
    removed: tuple[RuleEffect, ...]  # per pattern, most bytes first
    removed_by_source: tuple[RuleEffect, ...]  # per source ("default" or an ignore file)
    ignore_files: tuple[str, ...]
    secrets: tuple[str, ...]  # left out because they look like secrets (a note each)
    workspaces: tuple[str, ...]  # ferry workspaces (or excluded paths) left out
    warnings: tuple[str, ...]
    problems: tuple[str, ...]  # limits the snapshot would break (it would fail)
    error: str | None  # the full message take_snapshot would raise, if any
    limits: SnapshotLimits

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["largest"] = [{"path": p, "bytes": b} for p, b in self.largest]
        data["largest_folders"] = [
            {"path": p, "files": f, "bytes": b} for p, f, b in self.largest_folders
        ]
        return data

    def format(self) -> str:
        """A plain-text report for a terminal."""
        lines = [
            f"{self.source_dir}: {self.files:,} files, {format_bytes(self.bytes)}"
            + (f", {self.links:,} links" if self.links else ""),
            "ignore files: " + (", ".join(self.ignore_files) or "none (defaults only)"),
        ]
        if self.largest:
            lines.append("largest files:")
            lines += [f"  {format_bytes(b):>10}  {p!r}" for p, b in self.largest]
        if self.removed:
            lines.append("left out:")
            for effect in self.removed:
                lines.append(
                    f"  {effect.files:>7,} files {format_bytes(effect.bytes):>10}  "
                    f"{effect.pattern!r} ({effect.source})"
                )
        lines += [f"warning: {w}" for w in self.warnings]
        if self.error is not None:
            lines.append(f"error: {self.error}")
        return "\n".join(lines)


def preview(
    source_dir: Path, limits: SnapshotLimits | None = None, *, exclude: Sequence[Path] = ()
) -> SnapshotPreview:
    """Explain what :func:`take_snapshot` would take from ``source_dir`` (nothing is stored).

    Files that look like secrets and workspaces inside the folder are listed in ``secrets`` and
    ``workspaces``, each with a note in ``warnings`` (how to take a secret in, for one).
    """
    limits = SnapshotLimits.from_env() if limits is None else limits
    tree = walk(source_dir, account=True, exclude=exclude)
    sizes = [(f[0], f[1]) for f in tree.files]
    problems = limits.problems(sizes)
    error = limit_message(tree.root, problems, sizes, tree.ignore_files) if problems else None
    if tree.unreadable:
        error = "cannot read: " + ", ".join(tree.unreadable) + (f"\n{error}" if error else "")
    removed = sorted(
        (RuleEffect(r.source, r.pattern, r.files, r.bytes) for r in tree.removed.values()),
        key=lambda e: (-e.bytes, -e.files, e.source, e.pattern),
    )
    by_source: dict[str, list[int]] = {}
    for effect in removed:
        slot = by_source.setdefault(effect.source, [0, 0])
        slot[0] += effect.files
        slot[1] += effect.bytes
    return SnapshotPreview(
        source_dir=tree.root,
        files=len(tree.files),
        bytes=sum(size for _, size in sizes),
        links=len(tree.links),
        largest=tuple(largest(sizes, _TOP)),
        largest_folders=tuple(folders(sizes)[:_TOP]),
        removed=tuple(removed),
        removed_by_source=tuple(
            RuleEffect(source, "*", files, size)
            for source, (files, size) in sorted(by_source.items(), key=lambda kv: -kv[1][1])
        ),
        ignore_files=tuple(tree.ignore_files),
        secrets=tuple(sorted(tree.secrets)),
        workspaces=tuple(sorted(tree.workspaces + tree.excluded)),
        warnings=tuple(tree.notes() + limits.warnings(sizes)),
        problems=tuple(problems),
        error=error,
        limits=limits,
    )
