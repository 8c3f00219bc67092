"""The spool writer: the one place the in-job runtime touches the disk.

Records are appended to an in-memory queue (a few hundred nanoseconds per record) and written as
whole JSON lines, one ``os.write`` per batch, to a file this process owns
(``<pid>-<8 hex>.jsonl``, opened with ``O_APPEND``). A batch is written when 0.2 s have passed since
the last one (a daemon thread checks every 0.1 s), when 10,000 records are waiting, on
:meth:`SpoolWriter.flush`, and at interpreter exit. See ``docs/runtime-protocol.md``.

Nothing a script logs can stop the writer: encoding never raises (:mod:`.encoding` keeps every
record it can, one by one), the thread survives any error, and the exit flush reports a problem in
one line instead of a traceback. A write that fails keeps the bytes that did not reach the disk,
from the start of the line it stopped in, and the next attempt writes them to a new file (the torn
line left at the end of the old file is never read: readers take complete lines only), so a
record is written once or not yet, never twice or torn.

After ``os.fork()`` the child drops the records it inherited (the parent writes those) and opens a
file of its own on its first flush, so no line is written twice and no two processes share a file.
"""

from __future__ import annotations

import atexit
import collections
import os
import sys
import threading
import time
import weakref
from typing import IO, Any, Deque, Dict, List, Optional, Union

from .encoding import encode_batch, safe_repr
from .validation import artifact_parts, check_run_id

#: A path to copy from, or a readable binary (or text) stream.
Source = Union[str, "os.PathLike[str]", IO[bytes], IO[str]]

FLUSH_INTERVAL = 0.2
TICK = 0.1
MAX_BATCH = 10_000
RETRY_DELAY = 5.0

#: writers that may hold records (flushed at exit and reset after a fork); a closed writer leaves
_live: weakref.WeakSet[SpoolWriter] = weakref.WeakSet()


class SpoolWriter:
    """Appends protocol records to this process's spool file, in batches.

    Thread-safe; one writer per spool folder and process is enough (the runs of a job share it).

    Example::

        writer = SpoolWriter("/runs/exp_1_ab12cd34/spool")
        writer.write({"k": "metric", "run": "exp_1_ab12cd34", "ts": time.time(), ...})
        writer.flush()
    """

    def __init__(
        self,
        spool_dir: Union[str, "os.PathLike[str]"],
        *,
        flush_interval: float = FLUSH_INTERVAL,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.spool_dir = os.fspath(spool_dir)
        self._flush_interval = flush_interval
        self._max_batch = max_batch
        self._queue: Deque[Dict[str, Any]] = collections.deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._fd: Optional[int] = None
        self._fd_pid = 0
        self._path: Optional[str] = None
        self._last_flush = time.monotonic()
        #: encoded lines a failed write left behind; written first, to a new file, next time
        self._pending = b""
        self._progress = 0
        self._warned = False
        #: after a failed write, automatic flushes wait until then (explicit ones always try)
        self._retry_at = 0.0
        #: how many ``os.write`` batches this writer has issued (for tests and benchmarks)
        self.batches_written = 0
        _live.add(self)

    @property
    def path(self) -> Optional[str]:
        """The spool file this process writes to, once the first batch has been written."""
        return self._path

    def write(self, record: Dict[str, Any]) -> None:
        """Queue one record (a JSON-serialisable dict); it reaches the disk with the next batch."""
        queue = self._queue
        queue.append(record)
        if self._thread is None:
            self._start_thread()
        if len(queue) >= self._max_batch and time.monotonic() >= self._retry_at:
            self._flush(raise_errors=False)  # a full disk must not break the training loop

    def flush(self) -> None:
        """Write every queued record now, in one ``os.write``; raises ``OSError`` on failure."""
        self._flush(raise_errors=True)

    def close(self) -> None:
        """Flush, stop the background thread and close the file, releasing all three.

        The writer leaves the set flushed at exit; a later :meth:`write` starts it again (a new
        thread, a new file).
        """
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._flush(raise_errors=False)
        with self._lock:
            self._close_fd()
            self._thread = None
            self._stop = threading.Event()
            if not self._queue and not self._pending:
                _live.discard(self)

    def copy_file_in(self, run_id: str, name: str, source: Source) -> str:
        """Copy ``source`` to ``files/<run_id>/<name>`` in the spool folder, atomically.

        Returns the path relative to the spool folder, with forward slashes. ``name`` must be a
        relative artifact name without ``..`` components. The file appears in one step (written to
        a temporary file beside it, then renamed), so a reader never sees half of it.
        """
        parts = artifact_parts(name)
        check_run_id(run_id)
        relative = "/".join(["files", run_id, *parts])
        target = os.path.join(self.spool_dir, "files", run_id, *parts)
        folder = os.path.dirname(target)
        os.makedirs(folder, exist_ok=True)
        temp = os.path.join(folder, f".ferry-{os.urandom(6).hex()}.part")
        fd = os.open(
            temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600
        )
        try:
            with os.fdopen(fd, "wb") as out:
                _copy_into(source, out)
            os.replace(temp, target)
        except BaseException:
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise
        return relative

    # -- internals ---------------------------------------------------------------------------

    def _start_thread(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            _live.add(self)
            thread = threading.Thread(target=self._tick, name="ferry-spool", daemon=True)
            self._thread = thread
            thread.start()

    def _tick(self) -> None:
        stop = self._stop
        while not stop.wait(TICK):
            try:
                now = time.monotonic()
                due = now - self._last_flush >= self._flush_interval and now >= self._retry_at
                if (self._queue or self._pending) and due:
                    self._flush(raise_errors=False)
            except Exception as exc:  # a bug must not stop the thread: records would wait for exit
                _report(
                    f"ferry: the metric spool thread hit an error and goes on: {safe_repr(exc)}"
                )

    def _flush(self, raise_errors: bool) -> None:
        with self._lock:
            self._last_flush = time.monotonic()
            queue = self._queue
            count = len(queue)
            if not count and not self._pending:
                return
            popleft = queue.popleft
            batch: List[Dict[str, Any]] = [popleft() for _ in range(count)]
            data = self._pending + encode_batch(batch) if batch else self._pending
            self._pending = b""
            try:
                self._write_all(data)
                self._retry_at = 0.0
            except Exception as exc:  # OSError (a full disk) above all; keep what is not on disk
                self._pending = data[data.rfind(b"\n", 0, self._progress) + 1 :]
                self._close_fd()  # the next attempt starts a new file, after the torn line
                self._retry_at = time.monotonic() + RETRY_DELAY
                if raise_errors:
                    raise
                if not self._warned:
                    self._warned = True
                    _report(f"ferry: cannot write the metric spool: {safe_repr(exc)}")

    def _write_all(self, data: bytes) -> None:
        self._progress = 0  # bytes of ``data`` on disk, for _flush when this raises
        pid = os.getpid()
        if self._fd is None or self._fd_pid != pid:
            self._open(pid)
        assert self._fd is not None
        view = memoryview(data)
        while self._progress < len(data):
            written = os.write(self._fd, view[self._progress :])
            if written <= 0:
                raise OSError(f"the spool file took no bytes ({self._path})")
            self._progress += written
        self.batches_written += 1

    def _open(self, pid: int) -> None:
        os.makedirs(self.spool_dir, exist_ok=True)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        while True:
            path = os.path.join(self.spool_dir, f"{pid}-{os.urandom(4).hex()}.jsonl")
            try:
                self._fd = os.open(path, flags, 0o600)
                break
            except FileExistsError:
                continue
        self._fd_pid = pid
        self._path = path

    def _close_fd(self) -> None:
        if self._fd is not None and self._fd_pid == os.getpid():
            try:
                os.close(self._fd)
            except OSError:
                pass
        self._fd = None

    def _after_fork_in_child(self) -> None:
        # The parent still holds (and will write) what was queued before the fork.
        self._queue = collections.deque()
        self._pending = b""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._fd = None  # the inherited descriptor belongs to the parent's file
        self._path = None
        self._last_flush = time.monotonic()
        self.batches_written = 0


def _copy_into(source: Source, out: IO[bytes]) -> None:
    if isinstance(source, (str, os.PathLike)):
        with open(os.fspath(source), "rb") as stream:
            _pump(stream, out)
    else:
        _pump(source, out)


def _pump(stream: Union[IO[bytes], IO[str]], out: IO[bytes]) -> None:
    read = stream.read
    while True:
        chunk = read(1024 * 1024)
        if not chunk:
            return
        out.write(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)


def _flush_all_writers() -> None:
    # At exit: a problem is one line on stderr, never "Exception ignored in atexit callback".
    for writer in list(_live):
        try:
            writer._flush(raise_errors=False)
        except Exception as exc:
            _report(f"ferry: could not write the last metrics to the spool: {safe_repr(exc)}")


def _after_fork_in_child() -> None:
    try:
        for writer in list(_live):
            writer._after_fork_in_child()
        _hook_multiprocessing_exit()
    except Exception as exc:
        _report(f"ferry: the metric spool could not be reset after fork: {safe_repr(exc)}")


def _report(message: str) -> None:
    """One line on stderr; never raises (stderr may be closed or gone at exit)."""
    try:
        print(message, file=sys.stderr)
    except Exception:
        pass


def _hook_multiprocessing_exit() -> None:
    # multiprocessing's fork children leave through os._exit(), which skips atexit. Its bootstrap
    # clears the child's finalizers, then runs the after-fork callbacks, and its exit function runs
    # the finalizers: so register, from an after-fork callback, a finalizer that flushes.
    mp_util = sys.modules.get("multiprocessing.util")
    register = getattr(mp_util, "register_after_fork", None)
    if register is not None:
        register(_MP_TOKEN, _register_mp_finalizer)


class _Token:
    """An object for multiprocessing's weak after-fork registry to hold on to."""


_MP_TOKEN = _Token()


def _register_mp_finalizer(_token: object) -> None:
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is not None:
        mp_util.Finalize(None, _flush_all_writers, exitpriority=1000)


atexit.register(_flush_all_writers)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
