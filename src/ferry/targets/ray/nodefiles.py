"""What a node agent reads of a run's folder on its node (standard library and ferry.agent).

:class:`RunReader` keeps the places it has read up to: each rank log is followed by stream
position (:class:`~ferry.agent.logcap.LogFollower`: the logs are capped on the node, and a
compaction there is never sent twice), spool files by byte offset (whole lines only), artifact
files and watched folders by size and time. Spool records name files copied before them, so a
step sends every such file or holds the records back. Pickled by value with the node agent.

Example::

    reader = RunReader(run_root)
    reader.read(["logs"])    # {"logs": {...}, "spool": {...}, "files": {...}, "watched": {...},
                             #  "more": False}
"""

from __future__ import annotations

import os
import shutil
import time
from typing import Any

from ferry.agent import logcap
from ferry.agent.store import check_path

PER_FILE_MAX = 4 << 20  # bytes of one log or spool file per step
FILES_BUDGET = 16 << 20  # bytes of whole files (artifacts, watched folders) per step
WATCHED_FILE_MAX = 8 << 20  # files of watched folders larger than this are not mirrored live
KEEP_ABANDONED_SECONDS = 86400.0  # run folders nobody has touched for a day are removed


class RunReader:
    """The new bytes of one node's run folder, step after step."""

    def __init__(self, run_root: str) -> None:
        self.run_root = run_root
        self.logs: dict[str, logcap.LogFollower] = {}
        self.offsets: dict[str, int] = {}
        self.seen: dict[str, tuple[int, int]] = {}

    def read(self, watched: list[str] | None) -> dict[str, Any]:
        """What is new: logs, spool records (with the files they name), watched folders."""
        out: dict[str, Any] = {"logs": {}, "spool": {}, "files": {}, "more": False}
        out["more"] = self._read_logs(out["logs"])
        spool = os.path.join(self.run_root, "spool")
        pending = {}
        for name in listdir(spool):
            if name.endswith(".jsonl"):
                chunk, more = self._read_lines(os.path.join(spool, name), "spool/" + name)
                out["more"] |= more
                if chunk:
                    pending[name] = chunk
        budget = [FILES_BUDGET]
        complete = self._changed_files(os.path.join(spool, "files"), "files", out["files"], budget)
        if complete:
            for name, chunk in pending.items():
                self.offsets["spool/" + name] = self.offsets.get("spool/" + name, 0) + len(chunk)
            out["spool"] = pending
        out["more"] |= not complete
        if watched is not None:
            out["watched"] = {}
            wd = os.path.join(self.run_root, "wd")
            for folder in watched:
                where = os.path.join(wd, check_path(folder))
                self._changed_files(where, folder, out["watched"], budget, True)
        return out

    def _read_logs(self, out: dict[str, bytes]) -> bool:
        """New bytes of each rank log, by stream position."""
        more = False
        user_logs = os.path.join(self.run_root, "user_logs")
        for name in listdir(user_logs):
            if not (name.startswith("std_log") and name.endswith(".txt")):
                continue
            follower = self.logs.get(name)
            if follower is None:
                follower = self.logs[name] = logcap.LogFollower(os.path.join(user_logs, name))
            data = follower.read(PER_FILE_MAX)
            more |= len(data) >= PER_FILE_MAX
            if data:
                out[name] = data
        return more

    def _read_lines(self, path: str, key: str) -> tuple[bytes, bool]:
        """Whole new lines of a spool file (the offset moves once they are sent)."""
        offset = self.offsets.get(key, 0)
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read(PER_FILE_MAX + 1)
        except OSError:
            return b"", False
        more = len(data) > PER_FILE_MAX
        data = data[:PER_FILE_MAX]
        return data[: data.rfind(b"\n") + 1], more

    def _changed_files(
        self,
        folder: str,
        prefix: str,
        out: dict[str, bytes],
        budget: list[int],
        skip_big: bool = False,
    ) -> bool:
        """Add changed files under ``folder`` to ``out``; False when the budget ran out."""
        for dirpath, _, names in os.walk(folder):
            for name in sorted(names):
                if name.startswith(".ferry-"):
                    continue  # a copy in progress
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, folder).replace(os.sep, "/")
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                key, stamp = f"{prefix}:{rel}", (st.st_size, st.st_mtime_ns)
                if self.seen.get(key) == stamp or (skip_big and st.st_size > WATCHED_FILE_MAX):
                    continue
                if st.st_size > budget[0] and out:
                    return False
                with open(path, "rb") as fh:
                    out[f"{prefix}/{rel}" if prefix else rel] = fh.read()
                budget[0] -= st.st_size
                self.seen[key] = stamp
        return True


def outputs_batch(root: str, cursor: list[int]) -> tuple[list[dict[str, Any]], list[int] | None]:
    """A batch of the folder ``root`` (files in pieces, links by target) from ``cursor`` on;
    the next cursor, None at the end."""
    paths = sorted(
        os.path.join(d, n) for d, subdirs, names in os.walk(root) for n in names + subdirs
    )
    paths = [p for p in paths if os.path.islink(p) or os.path.isfile(p)]
    index, offset = cursor
    items: list[dict[str, Any]] = []
    budget = FILES_BUDGET
    while index < len(paths) and budget > 0:
        path = paths[index]
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        if os.path.islink(path):
            items.append({"path": rel, "link": os.readlink(path)})
            index, offset = index + 1, 0
            continue
        st = os.stat(path)
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(budget)
        items.append({"path": rel, "offset": offset, "data": data, "mode": st.st_mode & 0o777})
        budget -= len(data)
        offset += len(data)
        if offset >= st.st_size:
            index, offset = index + 1, 0
    return items, ([index, offset] if index < len(paths) else None)


def prune_abandoned(runs: str) -> None:
    """Remove run folders whose agents died long ago without cleaning up (a crashed driver)."""
    now = time.time()
    for run in _subdirs(runs):
        try:
            stamps = [os.stat(run).st_mtime] + [
                os.stat(os.path.join(node, ".alive")).st_mtime
                for node in _subdirs(run)
                if os.path.exists(os.path.join(node, ".alive"))
            ]
        except OSError:
            continue
        if now - max(stamps) > KEEP_ABANDONED_SECONDS:
            shutil.rmtree(run, ignore_errors=True)


def _subdirs(folder: str) -> list[str]:
    try:
        return [e.path for e in os.scandir(folder) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def listdir(folder: str) -> list[str]:
    """The plain files of ``folder``, sorted (none when it is missing)."""
    try:
        return sorted(n for n in os.listdir(folder) if os.path.isfile(os.path.join(folder, n)))
    except OSError:
        return []
