"""Helpers shared by the snapshot tests (imported by name: tests are not a package)."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

# Names that break naive code: spaces, both quotes, shell metacharacters, unicode (composed and
# not), a newline, a tab, a leading dash, a backslash, a name that looks like a negated pattern.
AWKWARD_NAMES: tuple[str, ...] = (
    "plain.txt",
    "with space.txt",
    'it\'s "quoted".txt',
    "ünïcödé-日本語.py",
    "e\u0301-decomposed.txt",
    "new\nline.txt",
    "tab\there.txt",
    "-leading-dash.txt",
    "back\\slash.txt",
    "!bang.txt",
    "$(echo pwned);.sh",
    "🚀 emoji.md",
)
AWKWARD_DIRS: tuple[str, ...] = ("dir with space", "ünï dir", "new\nline dir")


def write(path: Path, data: bytes | str, mode: int | None = None) -> Path:
    """Create ``path`` (and its folders) with ``data``; optionally chmod it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if mode is not None:
        path.chmod(mode)
    return path


def age(root: Path, seconds: float = 60.0) -> None:
    """Push the mtime of ``root`` (a file, or every file below a folder) into the past, out of
    the stat cache's racy window."""
    when = time.time() - seconds
    if not root.is_dir():
        os.utime(root, (when, when), follow_symlinks=False)
    for folder, _dirs, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(folder, name), (when, when), follow_symlinks=False)


def tree_bytes(root: Path) -> dict[str, tuple[bytes | str, int]]:
    """Every file and link under ``root``: relpath -> (content or link target, mode bits)."""
    out: dict[str, tuple[bytes | str, int]] = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            full = Path(folder, name)
            rel = full.relative_to(root).as_posix()
            st = full.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = (os.readlink(full), 0)
            else:
                out[rel] = (full.read_bytes(), stat.S_IMODE(st.st_mode))
    for folder, dirs, _files in os.walk(root):
        for name in dirs:
            full = Path(folder, name)
            if full.is_symlink():
                out[full.relative_to(root).as_posix()] = (os.readlink(full), 0)
    return out
