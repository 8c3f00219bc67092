"""The follower of a run: its logs, spool and watched folders streamed to the client as frames.

:class:`Out` writes frames (a JSON header line, then ``n`` raw bytes; :mod:`.serve` describes
them), one writer at a time: the follower's thread and the replies to requests share it.
:class:`Follower` sends what is new in a run folder until the job has exited, then its result:

- spool records (``spool/*.jsonl``) and the files they name (``spool/files/``), the files
  first, so the client never reads a record before the file it names;
- the job's capped logs (head + marker + tail, :mod:`.logcap`), by stream position (``pos``:
  where the follower is in the job's whole output), so a compaction on the host never sends a
  byte twice nor skips one that is kept, and a follower that starts again after a reconnection
  goes on from the ``pos`` the client last received;
- watched folders under the working folder (``logs`` by default), which a job may rewrite in
  place: small files are sent whole when they change, big ones as tails.

A job whose watchdog vanished without a result is reported lost.

Example::

    follower = Follower(Out(sys.stdout.buffer, exit_when_gone=True), run_dir, offsets={})
    follower.start()                  # a daemon thread; follower.stopped = True ends it
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, BinaryIO

from . import jobs, logcap
from .store import check_path

SCAN_SECONDS = 0.05
FRAME_MAX = 4 << 20  # bytes of one file per frame; bigger files go in several frames
WHOLE_MAX = 1 << 20  # watched files below this are sent whole when they change
LOST_CHECK_SECONDS = 1.0  # how often a follower checks that the job's watchdog still runs


class Gone(Exception):
    """The client went away (its channel closed)."""


class Out:
    """Frames to the client, one writer at a time."""

    def __init__(self, fh: BinaryIO, exit_when_gone: bool) -> None:
        self._lock = threading.Lock()
        self._fh = fh
        self._exit_when_gone = exit_when_gone

    def send(self, header: dict[str, Any], payload: bytes = b"") -> None:
        if payload:
            header["n"] = len(payload)
        line = json.dumps(header, separators=(",", ":")).encode() + b"\n"
        with self._lock:
            try:
                self._fh.write(line)
                if payload:
                    self._fh.write(payload)
                self._fh.flush()
            except OSError:
                if self._exit_when_gone:
                    os._exit(0)  # a per-channel agent: nothing left to do
                raise Gone() from None


def is_log(rel: str) -> bool:
    """A job's capped log (``user_logs/std_log.txt``, ``user_logs/std_log_rank_N.txt``)."""
    folder, _, name = rel.rpartition("/")
    return folder == "user_logs" and name.startswith("std_log") and name.endswith(".txt")


class Follower(threading.Thread):
    """Streams new bytes of the run's logs, spool and watched folders until the job has exited.

    ``offsets`` (from a client that reconnects) are byte offsets for spool files and watched
    files, stream positions for logs.
    """

    def __init__(
        self, out: Out, run_dir: str, offsets: dict[str, int], watch: list[str] | None = None
    ) -> None:
        super().__init__(daemon=True)
        self.out = out
        self.run_dir = run_dir
        self.sent = {str(k): int(v) for k, v in offsets.items()}
        self.watch = [check_path(str(w)) for w in (["logs"] if watch is None else watch)]
        self.stamps: dict[str, tuple[int, int] | None] = {}
        self.logs: dict[str, logcap.LogFollower] = {}
        self.stopped = False

    def run(self) -> None:
        exit_path = os.path.join(self.run_dir, "exit.json")
        started = time.monotonic()
        next_check = started + LOST_CHECK_SECONDS
        while not self.stopped:
            finished = os.path.exists(exit_path)  # before the scan: it then sees the last bytes
            lost = False
            now = time.monotonic()
            if not finished and now >= next_check:
                next_check = now + LOST_CHECK_SECONDS
                lost = not jobs.watchdog_alive(self.run_dir) and not os.path.exists(exit_path)
            try:
                while self.scan():
                    pass
                if finished:
                    self.out.send({"t": "exit", **self.result(exit_path)})
                    return
                if lost:
                    self.out.send({"t": "exit", "lost": True, "code": None, "reason": "lost"})
                    return
            except Gone:
                return
            # look often while a job starts (its first line, a quick exit), then calm down
            age = time.monotonic() - started
            time.sleep(0.005 if age < 2 else 0.02 if age < 10 else SCAN_SECONDS)

    def result(self, exit_path: str) -> dict[str, Any]:
        """The watchdog's result, and whether ./outputs has anything to collect."""
        with open(exit_path, encoding="utf-8") as fh:
            result: dict[str, Any] = json.load(fh)
        outputs = os.path.join(self.run_dir, "wd", "outputs")
        result["outputs"] = os.path.isdir(outputs) and bool(os.listdir(outputs))
        return result

    def scan(self) -> bool:
        """Send what is new; True when a file has more to send."""
        more = False
        records: list[tuple[str, bytes, bool]] = []
        try:
            names = sorted(
                e.name for e in os.scandir(os.path.join(self.run_dir, "spool"))
                if e.name.endswith(".jsonl")
            )  # fmt: skip
        except OSError:
            names = []
        for name in names:  # records are read first: files they name were complete before
            more |= self._tail("spool/" + name, records)
        frames: list[tuple[str, bytes, bool]] = []
        for rel in self._walk("spool/files", skip_partial=True):
            more |= self._tail(rel, frames)
        for folder in self.watch:
            for rel in self._walk("wd/" + folder, skip_partial=False):
                more |= self._changed(rel, frames)
        for rel, payload, reset in frames + records:  # files before the records naming them
            self.out.send({"t": "data", "f": rel, "reset": reset}, payload)
        for rel in self._logs():
            more |= self._follow_log(rel)
        return more

    def _logs(self) -> list[str]:
        try:
            names = os.listdir(os.path.join(self.run_dir, "user_logs"))
        except OSError:
            return []
        return sorted("user_logs/" + n for n in names if is_log("user_logs/" + n))

    def _follow_log(self, rel: str) -> bool:
        follower = self.logs.get(rel)
        if follower is None:
            path = os.path.join(self.run_dir, rel)
            follower = self.logs[rel] = logcap.LogFollower(path, self.sent.get(rel, 0))
        data = follower.read(FRAME_MAX)
        if not data:
            return False
        self.sent[rel] = follower.position
        self.out.send({"t": "data", "f": rel, "reset": False, "pos": follower.position}, data)
        return len(data) >= FRAME_MAX

    def _walk(self, rel_root: str, skip_partial: bool) -> list[str]:
        top = os.path.join(self.run_dir, rel_root)
        out = []
        for folder, dirs, files in os.walk(top):
            dirs.sort()
            rel_folder = rel_root + folder[len(top) :]
            for name in sorted(files):
                if skip_partial and name.startswith(".ferry-") and name.endswith(".part"):
                    continue
                out.append(rel_folder + "/" + name)
        return out

    def _tail(self, rel: str, frames: list[tuple[str, bytes, bool]]) -> bool:
        path = os.path.join(self.run_dir, rel)
        try:
            size = os.stat(path).st_size
        except OSError:
            return False
        offset = self.sent.get(rel, 0)
        reset = size < offset
        if reset:
            offset = 0
        elif size == offset:
            return False
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(min(size - offset, FRAME_MAX))
        self.sent[rel] = offset + len(data)
        frames.append((rel, data, reset))
        return offset + len(data) < size

    def _changed(self, rel: str, frames: list[tuple[str, bytes, bool]]) -> bool:
        """Watched files may be rewritten in place: small ones go whole, big ones as tails."""
        try:
            st = os.stat(os.path.join(self.run_dir, rel))
        except OSError:
            return False
        stamp = (st.st_size, st.st_mtime_ns)
        if rel not in self.stamps and self.sent.get(rel) == st.st_size:
            self.stamps[rel] = stamp  # sent before a reconnect
            return False
        if self.stamps.get(rel) == stamp:
            return False
        if st.st_size > WHOLE_MAX and st.st_size >= self.sent.get(rel, 0):
            more = self._tail(rel, frames)
        else:
            self.sent[rel] = 1 << 62  # forces a reset: the whole file again
            more = self._tail(rel, frames)
        self.stamps[rel] = None if more else stamp
        return more
