"""Where the bytes the agent streams back land on this machine.

The agent names each file relative to the remote run folder; :class:`LocalSink` maps those names
into the local run folder the supervisor reads (``user_logs/std_log.txt`` and the rank logs,
``spool/…``) and into the local copy of the job's watched folders (``./logs`` by default). The
logs are written through a :class:`~ferry.agent.logcap.CappedLog` — capped here too, and the one
writer of the local log, so ferry's own lines (:meth:`LocalSink.note`) go through it as well.
Spool files are appended in arrival order; a watched file sent whole replaces the old copy
(temp file + rename). The sink keeps what a reconnected agent resumes from: the stream position
of each log, the bytes received of every other file. A name that would leave those folders is
refused (a remote host must not write anywhere else here).

Example::

    sink = LocalSink(job.paths, watched=("logs",))
    sink.write("spool/12-ab.jsonl", b'{"k": "metric", …}\\n', reset=False)
    sink.received        # {"spool/12-ab.jsonl": 21}
"""

from __future__ import annotations

import threading
from pathlib import Path

from ferry.agent import files, logcap
from ferry.agent.serve import is_log
from ferry.errors import TargetRefused
from ferry.spec import RunPaths


class LocalSink:
    """Writes streamed file contents into the local run folder."""

    def __init__(self, paths: RunPaths, watched: tuple[str, ...], max_bytes: int | None = None):
        self.paths = paths
        self.watched = watched
        #: the local copy of the job's working folder (its watched folders only)
        self.workdir = paths.workdir
        self.received: dict[str, int] = {}
        self.bytes = 0
        self._max_bytes = logcap.max_bytes_from_env() if max_bytes is None else max_bytes
        self._logs: dict[str, logcap.CappedLog] = {}
        self._lock = threading.Lock()
        self._closed = False

    def local_path(self, rel: str) -> Path:
        parts = rel.split("/")
        if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise TargetRefused(f"the remote host sent an unsafe file name {rel!r}")
        if is_log(rel) or (parts[0] == "spool" and len(parts) > 1):
            return self.paths.run_dir.joinpath(*parts)
        if parts[0] == "wd" and any(rel.startswith(f"wd/{w}/") for w in self.watched):
            return self.workdir.joinpath(*parts[1:])
        raise TargetRefused(f"the remote host sent an unexpected file {rel!r}")

    def write(self, rel: str, data: bytes, reset: bool, position: int | None = None) -> None:
        """Keep ``data`` of the remote file ``rel``: appended, or replacing it when ``reset``;
        ``position`` is where a log's stream is after ``data`` (the agent's ``pos``)."""
        path = self.local_path(rel)
        with self._lock:
            if self._closed:
                return
            if is_log(rel):
                self._log(rel, path).write(data)
                self.received[rel] = (
                    self.received.get(rel, 0) + len(data) if position is None else position
                )
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                if reset:  # the temp file outside the watched folder: it is mirrored live
                    temp = self.paths.run_dir / "tmp"
                    temp.mkdir(exist_ok=True)
                    files.write_atomic(str(path), data, temp_dir=str(temp))
                else:
                    files.append(str(path), data)
                self.received[rel] = (0 if reset else self.received.get(rel, 0)) + len(data)
            self.bytes += len(data)

    def note(self, text: str, rel: str = "user_logs/std_log.txt") -> bool:
        """A line of ferry's own at the end of the local log; False once the sink is closed."""
        with self._lock:
            if self._closed:
                return False
            line = text.rstrip("\n") + "\n"
            self._log(rel, self.local_path(rel)).write(line.encode("utf-8", "backslashreplace"))
            return True

    def _log(self, rel: str, path: Path) -> logcap.CappedLog:
        log = self._logs.get(rel)
        if log is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            log = self._logs[rel] = logcap.CappedLog(str(path), self._max_bytes)
        return log

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for log in self._logs.values():
                log.close()
            self._logs.clear()
