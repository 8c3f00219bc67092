"""Writing what the node agents send back into the run's folder, where the supervisor reads it.

Logs and spool files only grow, so their new bytes are appended; artifact files the job uploaded
(``spool/files/…``) are written before the spool records that name them, and ./logs files are
replaced whole (temp file + rename), so the supervisor never reads half a file.

Example::

    writer = StreamWriter(job.run_dir)
    writer.apply(step_result)      # {"logs": {...}, "spool": {...}, "files": {...}, ...}
    writer.logs_dir                # mirrored as the run's logs/ artifacts
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _safe(rel: str) -> str:
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"refusing the unsafe path {rel!r} sent by a node")
    return rel


class StreamWriter:
    """Appends and replaces files under one run folder."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.spool_dir = run_dir / "spool"
        self.logs_dir = run_dir / "ray" / "logs"
        self.user_logs = run_dir / "user_logs"
        self.tmp = run_dir / "ray" / "tmp"
        for folder in (self.spool_dir, self.logs_dir, self.user_logs, self.tmp):
            folder.mkdir(parents=True, exist_ok=True)

    def apply(self, result: Mapping[str, Any]) -> None:
        for rel, data in (result.get("files") or {}).items():
            _replace(self.spool_dir / _safe(rel), data, self.tmp)
        for name, data in (result.get("spool") or {}).items():
            _append(self.spool_dir / _safe(name), data)
        for name, data in (result.get("logs") or {}).items():
            _append(self.user_logs / _safe(name), data)
        for rel, data in (result.get("logs_dir") or {}).items():
            _replace(self.logs_dir / _safe(rel), data, self.tmp)


def _append(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _replace(path: Path, data: bytes, tmp_dir: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"{os.getpid()}.part"
    tmp.write_bytes(data)
    os.replace(tmp, path)
