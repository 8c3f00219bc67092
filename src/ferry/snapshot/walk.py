"""Walking a source folder: one ``os.scandir`` per folder, ignore rules applied on the way.

The walk reads nothing but folder listings, ``lstat`` results, link targets and ignore files. It
never follows a symbolic link (a link is reported as a link, whatever it points to), does not
enter excluded folders, and reports special files (sockets, fifos, devices) instead of opening
them. File records are plain tuples because a walk of a large tree makes one per file.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ferry.errors import SnapshotError
from ferry.snapshot.ignore import (
    IGNORE_FILES,
    IgnoreRule,
    RuleSet,
    default_rules,
    judge,
    parse_ignore_file,
)
from ferry.snapshot.manifest import link_escapes

# (relative posix path, size, mtime_ns, inode, ctime_ns, st_mode)
FileStat = tuple[str, int, int, int, int, int]
_IGNORE_NAMES = frozenset(IGNORE_FILES)


@dataclass
class Removal:
    """What one ignore rule left out of the tree."""

    source: str
    pattern: str
    files: int = 0
    bytes: int = 0


@dataclass
class Tree:
    """The outcome of a walk (mutable while the walk fills it in)."""

    root: str
    files: list[FileStat] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    special: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    ignore_files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Filled only when the walk was asked to account for what the rules removed.
    removed: dict[tuple[str, str], Removal] = field(default_factory=dict)

    def notes(self) -> list[str]:
        """Warnings about what the walk skipped or will not follow."""
        out = list(self.warnings)
        for rel in self.special:
            out.append(f"{rel!r} is not a regular file (socket, fifo or device): skipped")
        for rel, target in self.links:
            if link_escapes(rel, target):
                out.append(
                    f"{rel!r} is a link to {target!r}, outside the source folder: recorded as "
                    "a link, never followed; a restore leaves it out"
                )
        return out


def walk(source_dir: Path, *, account: bool = False) -> Tree:
    """Walk ``source_dir`` and return what a snapshot of it would hold.

    With ``account=True`` the walk also counts, per rule, the files and bytes it excluded (this
    enters excluded folders, so it is for previews, not for the hot path).
    """
    root = os.path.realpath(source_dir)
    if not os.path.isdir(root):
        raise SnapshotError(f"source directory {os.fspath(source_dir)!r} is not a folder")
    tree = Tree(root)
    files = tree.files
    # (absolute folder, its relative prefix ending in "/" or "", rule sets deepest first)
    stack: list[tuple[str, str, tuple[RuleSet, ...]]] = [(root, "", (default_rules(),))]
    while stack:
        folder, prefix, layers = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            tree.unreadable.append(f"{prefix or './'} ({exc.strerror or exc})")
            continue
        layers = _with_ignore_file(tree, entries, prefix, layers)
        for entry in entries:
            rel = prefix + entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    rule = judge(layers, rel + "/")
                    if rule is not None and rule.exclude:
                        if account:
                            _count_removed(tree, rule, entry.path, is_dir=True)
                        continue
                    stack.append((entry.path, rel + "/", layers))
                    continue
                rule = judge(layers, rel)
                if rule is not None and rule.exclude:
                    if account:
                        _count_removed(tree, rule, entry.path, is_dir=False)
                    continue
                if entry.is_symlink():
                    tree.links.append((rel, os.readlink(entry.path)))
                    continue
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode):
                    files.append(
                        (rel, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, st.st_mode)
                    )
                else:
                    tree.special.append(rel)
            except FileNotFoundError:
                continue  # removed while we walked: it simply is not part of the snapshot
            except OSError as exc:
                tree.unreadable.append(f"{rel} ({exc.strerror or exc})")
    return tree


def _with_ignore_file(
    tree: Tree, entries: list[os.DirEntry[str]], prefix: str, layers: tuple[RuleSet, ...]
) -> tuple[RuleSet, ...]:
    """Add the folder's own ignore file (the highest-precedence one present) to ``layers``."""
    present = {e.name: e for e in entries if e.name in _IGNORE_NAMES}
    if not present:
        return layers
    name = next(n for n in IGNORE_FILES if n in present)
    entry, source = present[name], prefix + name
    if entry.is_symlink() or not entry.is_file(follow_symlinks=False):
        tree.warnings.append(f"{source} is not a regular file (a link?); its rules are not used")
        return layers
    try:
        with open(entry.path, encoding="utf-8", errors="surrogateescape") as handle:
            text = handle.read()
    except OSError as exc:
        tree.unreadable.append(f"{source} ({exc.strerror or exc})")
        return layers
    tree.ignore_files.append(source)
    return (parse_ignore_file(text, source, prefix), *layers)


def _count_removed(tree: Tree, rule: IgnoreRule, path: str, *, is_dir: bool) -> None:
    removal = tree.removed.setdefault(
        (rule.source, rule.pattern), Removal(rule.source, rule.pattern)
    )
    if not is_dir:
        try:
            st = os.lstat(path)
        except OSError:
            return
        if stat.S_ISREG(st.st_mode):
            removal.files += 1
            removal.bytes += st.st_size
        return
    for folder, _dirs, names in os.walk(path, followlinks=False):
        for name in names:
            try:
                st = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                removal.files += 1
                removal.bytes += st.st_size
