"""Writing files so that no reader ever sees half of one, and folders only their owner enters.

Three habits, each written once here for every machine that runs ferry's code (the library, SSH
hosts, Ray nodes): appends loop until every byte is written (``os.write`` may write less than it
was given), a file that replaces another is written beside it and renamed into place, and a
folder that holds a user's environments and runs is private to that user — created ``0700``,
and refused when it is a link, belongs to someone else or lets others in. Standard library only.

Example::

    append(log_path, b"epoch 1\\n")
    write_json(exit_path, {"code": 0})           # temp file + rename
    root = private_folder("~/.cache/ferry-ray")  # made 0700, or PrivateFolderError saying why
"""

from __future__ import annotations

import json
import os
import stat
import threading


class PrivateFolderError(Exception):
    """A folder that should be the user's alone is not (another owner, a link, open modes)."""


def write_all(fd: int, data: "bytes | memoryview") -> None:
    """Write every byte of ``data`` to ``fd``."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def append(path: str, data: bytes, mode: int = 0o600) -> None:
    """Append ``data`` to ``path`` (created with ``mode`` when missing)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, mode)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


def write_atomic(path: str, data: bytes, mode: int = 0o600, temp_dir: str = "") -> None:
    """Replace ``path`` with ``data`` (temp file + rename): readers see the old or the new file.
    The temp file is written beside ``path``, or in ``temp_dir`` (same file system) when a
    reader of ``path``'s folder must not see it."""
    name = "%s.%d.%d.tmp" % (os.path.basename(path), os.getpid(), threading.get_ident())
    temp = os.path.join(temp_dir or os.path.dirname(path), "." + name)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)
    os.replace(temp, path)


def write_json(path: str, data: object) -> None:
    """Replace ``path`` with ``data`` as JSON, atomically."""
    write_atomic(path, json.dumps(data).encode("utf-8"))


def private_folder(path: str) -> str:
    """The absolute folder ``path`` (``~`` is this user's home), created ``0700`` when missing,
    and checked: a real folder (not a link), owned by this user, closed to group and others.
    Raises :class:`PrivateFolderError` naming what is wrong and how to fix it."""
    folder = os.path.abspath(os.path.expanduser(path))
    parent = os.path.dirname(folder)
    if not os.path.isdir(parent):
        os.makedirs(parent, mode=0o700, exist_ok=True)
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(folder)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise PrivateFolderError(
            "%s is not a folder of its own (a link or a file); remove it, or choose another "
            "folder" % folder
        )
    if info.st_uid != os.getuid():
        raise PrivateFolderError(
            "%s belongs to user id %d, not to this user (%d): another user's files must never "
            "run as yours; choose a folder of your own" % (folder, info.st_uid, os.getuid())
        )
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise PrivateFolderError(
            "%s is open to other users (mode %o); make it private with `chmod 700 %s`, or "
            "choose another folder" % (folder, stat.S_IMODE(info.st_mode), folder)
        )
    return folder
