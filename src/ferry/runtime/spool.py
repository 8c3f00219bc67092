"""The spool writer: the one place the in-job runtime touches the disk.

Records are appended to an in-memory queue (a few hundred nanoseconds per record) and written as
whole JSON lines, one ``os.write`` per batch, to a file this process owns
(``<pid>-<8 hex>.jsonl``, opened with ``O_APPEND``). A batch is written when 0.2 s have passed since
the last one (a daemon thread checks every 0.1 s), when 10,000 records are waiting, on
:meth:`SpoolWriter.flush`, and at interpreter exit. See ``docs/runtime-protocol.md``.

After ``os.fork()`` the child drops the records it inherited (the parent writes those) and opens a
file of its own on its first flush, so no line is written twice and no two processes share a file.
"""

from __future__ import annotations

import atexit
import collections
import json
import json.encoder
import os
import sys
import threading
import time
import weakref
from typing import IO, Any, Callable, Deque, Dict, List, Optional, Tuple, Union

from .validation import artifact_parts, check_run_id

#: A path to copy from, or a readable binary (or text) stream.
Source = Union[str, "os.PathLike[str]", IO[bytes], IO[str]]

FLUSH_INTERVAL = 0.2
TICK = 0.1
MAX_BATCH = 10_000
RETRY_DELAY = 5.0

_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=True)
_FALLBACK = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), default=repr)

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
        """Flush, stop the background thread and close the file; later writes reopen it."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._flush(raise_errors=False)
        with self._lock:
            self._close_fd()
            self._thread = None
            self._stop = threading.Event()

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
            temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644
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
            thread = threading.Thread(target=self._tick, name="ferry-spool", daemon=True)
            self._thread = thread
            thread.start()

    def _tick(self) -> None:
        stop = self._stop
        while not stop.wait(TICK):
            now = time.monotonic()
            due = now - self._last_flush >= self._flush_interval and now >= self._retry_at
            if self._queue and due:
                self._flush(raise_errors=False)

    def _flush(self, raise_errors: bool) -> None:
        with self._lock:
            self._last_flush = time.monotonic()
            queue = self._queue
            count = len(queue)
            if not count:
                return
            popleft = queue.popleft
            batch: List[Dict[str, Any]] = [popleft() for _ in range(count)]
            data = _encode(batch)
            try:
                self._write_all(data)
                self._retry_at = 0.0
            except OSError as exc:
                # Keep the records for the next attempt rather than lose them.
                queue.extendleft(reversed(batch))
                self._close_fd()
                self._retry_at = time.monotonic() + RETRY_DELAY
                if raise_errors:
                    raise
                if not self._warned:
                    self._warned = True
                    print(f"ferry: cannot write the metric spool: {exc}", file=sys.stderr)

    def _write_all(self, data: bytes) -> None:
        pid = os.getpid()
        if self._fd is None or self._fd_pid != pid:
            self._open(pid)
        assert self._fd is not None
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.batches_written += 1

    def _open(self, pid: int) -> None:
        os.makedirs(self.spool_dir, exist_ok=True)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        while True:
            path = os.path.join(self.spool_dir, f"{pid}-{os.urandom(4).hex()}.jsonl")
            try:
                self._fd = os.open(path, flags, 0o644)
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
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._fd = None  # the inherited descriptor belongs to the parent's file
        self._path = None
        self._last_flush = time.monotonic()
        self.batches_written = 0


def _make_fast_encoder() -> Callable[[Dict[str, Any]], str]:
    # JSONEncoder.encode builds a new C encoder on every call; build one once (about a third
    # cheaper per record). Same output as _ENCODER; falls back to it without the C extension.
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has it
        return _ENCODER.encode
    try:
        encoder = make(
            None, _refuse, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True
        )
    except TypeError:  # pragma: no cover - a future signature change
        return _ENCODER.encode

    def encode(record: Dict[str, Any]) -> str:
        return "".join(encoder(record, 0))

    probe = {"a": [1, 1.5, None, True, "\u00e9\n"], "b": {"c": float("inf")}}
    try:
        same = encode(probe) == _ENCODER.encode(probe)
    except Exception:  # pragma: no cover - a future signature change
        same = False
    return encode if same else _ENCODER.encode


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def group_series(batch: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Fold repeated values of one metric into ``series`` records (columnar, far cheaper to
    encode, parse and store). Grouping stops at every other record, so the order between
    metrics and tags, children or statuses is kept; the order within one metric is kept."""
    out: List[Dict[str, Any]] = []
    slots: Dict[Tuple[Any, Any, Any, Any], int] = {}
    for rec in batch:
        if rec.get("k") != "metric":
            out.append(rec)
            slots = {}
            continue
        key = (rec.get("run"), rec.get("name"), rec.get("type"), rec.get("desc"))
        slot = slots.get(key)
        if slot is None:
            slots[key] = len(out)
            out.append(rec)
            continue
        first = out[slot]
        if first.get("k") == "metric":
            first = out[slot] = {
                "k": "series",
                "run": first.get("run"),
                "name": first.get("name"),
                "type": first.get("type"),
                "desc": first.get("desc"),
                "values": [first.get("value")],
                "steps": [first.get("step")],
                "ts": [first.get("ts")],
            }
        first["values"].append(rec.get("value"))
        first["steps"].append(rec.get("step"))
        first["ts"].append(rec.get("ts"))
    for rec in out:
        if rec.get("k") == "series" and all(step is None for step in rec["steps"]):
            rec["steps"] = None
    return out


def _encode(batch: List[Dict[str, Any]]) -> bytes:
    batch = group_series(batch)
    try:
        text = "\n".join(map(_encode_one, batch))
    except (TypeError, ValueError, RecursionError):
        text = "\n".join(map(_encode_leniently, batch))
    return (text + "\n").encode("ascii")


_encode_one = _make_fast_encoder()


def _encodable(value: Any) -> Any:
    try:
        _ENCODER.encode(value)
    except (TypeError, ValueError, RecursionError):
        return repr(value)
    return value


def _encode_leniently(record: Dict[str, Any]) -> str:
    # Only records written straight to a SpoolWriter can get here (the run API validates):
    # keep the line, with what cannot be encoded replaced by its repr, rather than lose the batch.
    try:
        return _ENCODER.encode(record)
    except (TypeError, ValueError, RecursionError):
        plain = (str, int, float, bool, type(None))
        if record.get("k") == "series" and isinstance(record.get("values"), list):
            # keep every value of the series: those that cannot be encoded become their repr
            return _ENCODER.encode(dict(record, values=[_encodable(v) for v in record["values"]]))
        return _FALLBACK.encode(
            {str(k): v if isinstance(v, plain) else repr(v) for k, v in record.items()}
        )


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
    for writer in list(_live):
        writer._flush(raise_errors=False)


def _after_fork_in_child() -> None:
    for writer in list(_live):
        writer._after_fork_in_child()
    _hook_multiprocessing_exit()


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
