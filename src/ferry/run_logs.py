"""A run's logs from the driver: waiting while following the log, and reading or downloading
every log file (``wait_for_completion``, ``get_details_with_logs``, ``get_all_logs``).

The log is the file the target writes (``runs/<id>/user_logs/std_log.txt``, one per rank for
distributed runs); following it reads what was appended since the last look, so a line shows up
within a poll (20 ms), and a run that ended is noticed within a second even when its supervisor
died (the heartbeat rules of :mod:`ferry.liveness` apply at every status read).

Example::

    run.wait_for_completion(show_output=True)   # streams the log, raises RunFailed on failure
    run.get_all_logs("logs/")                   # ['logs/user_logs/std_log.txt']
"""

from __future__ import annotations

import builtins
import codecs
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from ferry.agent.logcap import LogFollower
from ferry.errors import ConfigError, RunFailed
from ferry.run_state import RunState
from ferry.status import RunStatus
from ferry.supervisor import DONE_MARKER
from ferry.targets.base import LOG_NAME

NO_ERROR_DETAILS = "Detailed error not set on the Run. Please check the logs for details."


class RunLogs(RunState):
    """Waiting for a run and reading its logs (mixed into :class:`ferry.run.Run`)."""

    def wait_for_completion(
        self,
        show_output: bool = False,
        wait_post_processing: bool = False,
        raise_on_error: bool = True,
        timeout_seconds: float | None = None,
        out: TextIO | None = None,
    ) -> dict[str, Any]:
        """Wait for the run to end, following its log live when ``show_output``."""
        stream = out or sys.stdout
        if show_output:
            stream.write(f"RunId: {self.id}\nWeb View: {self.get_portal_url()}\n\n")
            stream.write(f"Streaming {LOG_NAME}\n{'=' * (len(LOG_NAME) + 10)}\n\n")
            stream.flush()
        for chunk in self.follow_log(timeout_seconds=timeout_seconds):
            if show_output:
                stream.write(chunk)
                stream.flush()
        details = self.get_details()
        if show_output:
            stream.write(
                f"\nExecution Summary\n=================\nRunId: {self.id}\n"
                f"Web View: {self.get_portal_url()}\n"
            )
            if details.get("error"):
                stream.write(f"\nError:\n{json.dumps(details['error'], indent=2)}\n")
            stream.flush()
        if raise_on_error and details["status"] == RunStatus.FAILED.value:
            error = (details.get("error") or {}).get("error", {})
            message = error.get("message", NO_ERROR_DETAILS)
            raise RunFailed(f"run {self.id} failed: {message}", details)
        return details

    def follow_log(self, timeout_seconds: float | None = None, poll: float = 0.02) -> Iterator[str]:
        """Yield the run's log as it grows until the run has ended (sub-second latency)."""
        path = self.run_dir / LOG_NAME
        done = self.run_dir / DONE_MARKER
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        follower = LogFollower(str(path))  # keeps its place when a capped log is compacted
        deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
        next_check = time.monotonic() + 1.0
        # a short run's end is seen within 5 ms; after its first second the log is read at
        # ``poll`` (a live log needs no more, and a long run should not wake 200 times a second)
        brisk_until = time.monotonic() + 1.0
        while True:
            finished = done.exists()
            text = _read_new(follower, decoder)
            if text:
                yield text
            if finished:
                break
            now = time.monotonic()
            if now >= next_check:
                next_check = now + 1.0
                self._record = None
                if self._refresh().status.is_terminal():
                    text = _read_new(follower, decoder)
                    if text:
                        yield text
                    break
            if deadline is not None and now >= deadline:
                raise TimeoutError(
                    f"run {self.id} is still {self.get_status()} after {timeout_seconds} s"
                )
            time.sleep(min(poll, 0.005) if now < brisk_until else poll)
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail
        self._record = None

    def get_details_with_logs(self) -> dict[str, Any]:
        """:meth:`get_details` with each ``logFiles`` entry holding the log's text, not its
        path (undecodable bytes shown as U+FFFD)."""
        details = self.get_details()
        details["logFiles"] = {
            name: Path(path).read_bytes().decode("utf-8", "replace")
            for name, path in details["logFiles"].items()
        }
        return details

    def get_all_logs(self, destination: str | os.PathLike[str] | None = None) -> builtins.list[str]:
        """Copy every log of the run below ``destination`` (default ``./assets/<run id>``,
        as the reference), keeping each log's name as its relative path; returns the paths."""
        dest = Path(destination) if destination is not None else Path("assets") / self.id
        if dest.exists() and not dest.is_dir():
            raise ConfigError(f"{str(dest)!r} exists and is not a directory")
        written = []
        for name, source in self._log_files().items():
            target = dest.joinpath(*name.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            written.append(str(target))
        if not written:
            dest.mkdir(parents=True, exist_ok=True)
        return written


def _read_new(follower: LogFollower, decoder: codecs.IncrementalDecoder) -> str:
    """Everything the log gained (in 16 MiB reads), decoded."""
    parts = []
    while data := follower.read():
        parts.append(decoder.decode(data))
    return "".join(parts)
