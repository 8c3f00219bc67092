"""Writing what the node agents send back into the run's folder, where the supervisor reads it.

Logs arrive by stream position (each node caps its logs; a compaction there is never sent
twice) and are written through a :class:`~ferry.agent.logcap.CappedLog` — capped here too, and
the one writer of each local log, so ferry's own lines (:meth:`StreamWriter.note`) go through it.
Spool files only grow, so their new bytes are appended; artifact files the job uploaded
(``spool/files/…``) are written before the spool records that name them; files of the watched
folders are replaced whole (temp file + rename), so the supervisor never reads half a file. At
the end, :func:`receive_outputs` brings every node's ./outputs.

Example::

    writer = StreamWriter(job.paths)
    writer.apply(step_result)      # {"logs": {...}, "spool": {...}, "files": {...}, ...}
    writer.workdir / "logs"        # mirrored as the run's logs/ artifacts
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ferry.agent import files, logcap
from ferry.spec import RunPaths


def _safe(rel: str) -> str:
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"refusing the unsafe path {rel!r} sent by a node")
    return rel


class StreamWriter:
    """Appends and replaces files under one run folder."""

    def __init__(self, paths: RunPaths, max_bytes: int | None = None) -> None:
        self.paths = paths
        self.spool_dir = paths.spool
        self.user_logs = paths.log.parent
        #: the local copy of the job's watched folders (node 0's and the others', merged)
        self.workdir = paths.run_dir / "ray" / "wd"
        self.tmp = paths.run_dir / "ray" / "tmp"
        for folder in (self.spool_dir, self.workdir, self.user_logs, self.tmp):
            folder.mkdir(parents=True, exist_ok=True)
        self._max_bytes = logcap.max_bytes_from_env() if max_bytes is None else max_bytes
        self._logs: dict[str, logcap.CappedLog] = {}
        self._lock = threading.Lock()
        self._closed = False

    def apply(self, result: Mapping[str, Any]) -> None:
        for rel, data in (result.get("files") or {}).items():
            self._replace(self.spool_dir / _safe(rel), data)
        for name, data in (result.get("spool") or {}).items():
            files.append(str(self.spool_dir / _safe(name)), data)
        for name, data in (result.get("logs") or {}).items():
            self._write_log(_safe(name), data)
        for rel, data in (result.get("watched") or {}).items():
            self._replace(self.workdir / _safe(rel), data)

    def note(self, text: str) -> bool:
        """A line of ferry's own at the end of the main log; False once the writer is closed."""
        line = text.rstrip("\n") + "\n"
        return self._write_log(self.paths.log.name, line.encode("utf-8", "backslashreplace"))

    def _write_log(self, name: str, data: bytes) -> bool:
        with self._lock:
            if self._closed:
                return False
            log = self._logs.get(name)
            if log is None:
                path = self.user_logs / name
                log = self._logs[name] = logcap.CappedLog(str(path), self._max_bytes)
            log.write(data)
            return True

    def _replace(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        files.write_atomic(str(path), data, temp_dir=str(self.tmp))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for log in self._logs.values():
                log.close()
            self._logs.clear()


def receive_outputs(
    agents: list[Any], dest: Path, timeout: float, folders: list[str] | None = None
) -> None:
    """Copy every node's ./outputs (or each node's folder in ``folders``) into ``dest`` in
    batches (node 0 first: its files win when two nodes wrote the same name); links are made as
    links, never followed."""
    import ray

    written: set[str] = set()
    root = os.path.realpath(dest)
    for index, agent in enumerate(agents):
        mine: set[str] = set()
        cursor: list[int] | None = [0, 0]
        while cursor is not None:
            call = (
                agent.outputs.remote(cursor)
                if folders is None
                else agent.folder.remote(folders[index], cursor)
            )
            try:
                items, cursor = ray.get(call, timeout=timeout)
            except (ray.exceptions.RayError, TimeoutError):
                break
            for item in items:
                rel = _safe(str(item["path"]))
                if rel in written:
                    continue
                mine.add(rel)
                path = dest / rel
                parent = os.path.realpath(path.parent)  # resolves links made before, if any
                if parent != root and not parent.startswith(root + os.sep):
                    continue  # under a link a node made: never written through
                path.parent.mkdir(parents=True, exist_ok=True)
                if "link" in item:
                    path.unlink(missing_ok=True)
                    os.symlink(item["link"], path)
                    continue
                with open(path, "r+b" if item["offset"] else "wb") as fh:
                    fh.seek(item["offset"])
                    fh.write(item["data"])
                path.chmod(int(item["mode"]))
        written |= mine
