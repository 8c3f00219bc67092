"""Where the bytes the agent streams back land on this machine.

The agent names each file relative to the remote run folder; :class:`LocalSink` maps those names
into the local run folder the supervisor reads (``user_logs/std_log.txt``, ``spool/…``) and into
the local copy of the job's ``./logs``. It appends in arrival order and counts the bytes received
per remote file, which is what a reconnected agent resumes from. A name that would leave those
folders is refused (a remote host must not write anywhere else here).

Example::

    sink = LocalSink(job.run_dir, job.run_dir / "wd" / "logs")
    sink.write("spool/12-ab.jsonl", b'{"k": "metric", …}\\n', reset=False)
    sink.received        # {"spool/12-ab.jsonl": 21}
"""

from __future__ import annotations

import os
from pathlib import Path

from ferry.errors import TargetError
from ferry.targets.base import LOG_NAME


class LocalSink:
    """Writes streamed file contents into the local run folder."""

    def __init__(self, run_dir: Path, logs_dir: Path) -> None:
        self.run_dir = run_dir
        self.logs_dir = logs_dir
        self.received: dict[str, int] = {}
        self.bytes = 0

    def local_path(self, rel: str) -> Path:
        parts = rel.split("/")
        if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise TargetError(f"the remote host sent an unsafe file name {rel!r}")
        if rel == LOG_NAME or parts[0] == "spool":
            return self.run_dir.joinpath(*parts)
        if parts[:2] == ["wd", "logs"] and len(parts) > 2:
            return self.logs_dir.joinpath(*parts[2:])
        raise TargetError(f"the remote host sent an unexpected file {rel!r}")

    def write(self, rel: str, data: bytes, reset: bool) -> None:
        path = self.local_path(rel)
        if reset and rel == LOG_NAME:
            reset = False  # the local log also holds ferry's own lines: never truncate it
        path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if reset else os.O_APPEND)
        fd = os.open(path, flags, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        self.received[rel] = (0 if reset else self.received.get(rel, 0)) + len(data)
        self.bytes += len(data)
