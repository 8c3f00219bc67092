"""Walking a source folder: one ``os.scandir`` per folder, ignore rules applied on the way.

The walk reads nothing but folder listings, ``lstat`` results, link targets and ignore files. It
never follows a symbolic link (a link is reported as a link, whatever it points to), does not
enter excluded folders, and reports special files (sockets, fifos, devices) instead of opening
them. File records are plain tuples because a walk of a large tree makes one per file.

Two things are left out whatever the ignore files say, with a note each: a ferry workspace
inside the source folder (``FERRY_HOME`` under the project — it would copy every run's data
into itself), recognised by its ``blobs/`` folder beside ``ferry.db`` (or beside ``runs/`` and
``envs/``, before the database exists), and the paths the caller passes as ``exclude``. Files
that look like secrets are left out by default rules (:data:`~.ignore.SECRET_EXCLUDES`); the
walk lists them so that the user is told, and how to take them in.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ferry.errors import SnapshotError
from ferry.snapshot.ignore import (
    IGNORE_FILES,
    IgnoreRule,
    RuleSet,
    deciding_rule,
    default_rules,
    is_secret_rule,
    parse_ignore_file,
    reinclude_line,
)
from ferry.snapshot.manifest import link_escapes

# (relative posix path, size, mtime_ns, inode, ctime_ns, st_mode)
FileStat = tuple[str, int, int, int, int, int]
_IGNORE_NAMES = frozenset(IGNORE_FILES)
WORKSPACE_SOURCE = "ferry workspace"  # the "source" of a workspace left out, in previews
_SHOWN = 20


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
    # Left out although no ignore file said so: files looking like secrets (by the default
    # rules), and ferry workspaces (folders, ending in "/").
    secrets: list[str] = field(default_factory=list)
    workspaces: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)  # by the caller's ``exclude``
    # Filled only when the walk was asked to account for what the rules removed.
    removed: dict[tuple[str, str], Removal] = field(default_factory=dict)

    def notes(self) -> list[str]:
        """Warnings about what the walk skipped, left out or will not follow."""
        out = list(self.warnings)
        for rel in self.workspaces:
            out.append(f"{rel!r} is a ferry workspace: left out (a snapshot never holds one)")
        for rel in self.excluded:
            out.append(f"{rel!r} left out: excluded by the caller (the workspace in use)")
        if self.secrets:
            root_file = next((f for f in self.ignore_files if "/" not in f), ".ferryignore")
            for rel in self.secrets[:_SHOWN]:
                out.append(
                    f"{rel!r} looks like a secret: left out; to take it in, add this line to "
                    f"{root_file} in the source folder: {reinclude_line(rel)}"
                )
            if len(self.secrets) > _SHOWN:
                out.append(f"… and {len(self.secrets) - _SHOWN} more files that look like secrets")
        for rel in self.special:
            out.append(f"{rel!r} is not a regular file (socket, fifo or device): skipped")
        for rel, target in self.links:
            if link_escapes(rel, target):
                out.append(
                    f"{rel!r} is a link to {target!r}, outside the source folder: recorded as "
                    "a link, never followed; a restore leaves it out"
                )
        return out


def walk(source_dir: Path, *, account: bool = False, exclude: Sequence[Path] = ()) -> Tree:
    """Walk ``source_dir`` and return what a snapshot of it would hold.

    With ``account=True`` the walk also counts, per rule, the files and bytes it excluded (this
    enters excluded folders, so it is for previews, not for the hot path). Paths in ``exclude``
    (the current workspace, say) are left out wherever they are below ``source_dir``; one that
    is ``source_dir`` itself is refused.
    """
    root = os.path.realpath(source_dir)
    if not os.path.isdir(root):
        raise SnapshotError(f"source directory {os.fspath(source_dir)!r} is not a folder")
    tree = Tree(root)
    files = tree.files
    excluded = _relative_excludes(root, exclude)
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
        if prefix and (prefix in excluded or _is_workspace(entries)):
            (tree.excluded if prefix in excluded else tree.workspaces).append(prefix)
            if account:
                _count_removed(tree, (WORKSPACE_SOURCE, prefix), folder, is_dir=True)
            continue
        layers = _with_ignore_file(tree, entries, prefix, layers)
        for entry in entries:
            rel = prefix + entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    rule = deciding_rule(layers, rel + "/")
                    if rule is not None and rule.exclude:
                        if is_secret_rule(rule):
                            tree.secrets.append(rel + "/")
                        if account:
                            _count_removed(tree, rule, entry.path, is_dir=True)
                        continue
                    stack.append((entry.path, rel + "/", layers))
                    continue
                if excluded and rel in excluded:
                    tree.excluded.append(rel)
                    if account:
                        _count_removed(tree, (WORKSPACE_SOURCE, rel), entry.path, is_dir=False)
                    continue
                rule = deciding_rule(layers, rel)
                if rule is not None and rule.exclude:
                    if is_secret_rule(rule):
                        tree.secrets.append(rel)
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


def _relative_excludes(root: str, exclude: Sequence[Path]) -> frozenset[str]:
    """``exclude`` as paths relative to ``root`` (folders end in "/"); others are dropped."""
    out: set[str] = set()
    for path in exclude:
        real = os.path.realpath(path)
        if real == root:
            raise SnapshotError(
                f"the source folder {root} is the ferry workspace itself; keep the code to "
                "submit in a folder of its own (the workspace may sit beside it or inside it)"
            )
        if not real.startswith(root + os.sep):
            continue
        rel = os.path.relpath(real, root).replace(os.sep, "/")
        out.add(rel + "/" if os.path.isdir(real) else rel)
    return frozenset(out)


def _is_workspace(entries: list[os.DirEntry[str]]) -> bool:
    """Whether a folder's entries are those of a ferry workspace (see the module docstring)."""
    names = {
        e.name
        for e in entries
        if e.name in ("ferry.db", "blobs", "runs", "envs")
        and (e.name == "ferry.db" or e.is_dir(follow_symlinks=False))
    }
    if "blobs" not in names:
        return False
    return "ferry.db" in names or ("runs" in names and "envs" in names)


def _count_removed(
    tree: Tree, rule: IgnoreRule | tuple[str, str], path: str, *, is_dir: bool
) -> None:
    key = (rule.source, rule.pattern) if isinstance(rule, IgnoreRule) else rule
    removal = tree.removed.setdefault(key, Removal(*key))
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
