"""Read a run's spool (see docs/runtime-protocol.md) into the run history: incrementally, exactly
once, and trusting nothing in it.

The spool is written by the user's job (and, for SSH and Ray runs, comes back from another
machine), so every record is checked where it enters:

* a record may name only the run being ingested, or a child run created earlier in this spool
  (or already in the history under this run); anything else is dropped with a note;
* a ``child`` record creates a run only under an allowed parent, with an id that can name a
  folder (no separators, no ``..``) and that no run has yet;
* ``status`` records are for child runs only: the top-level run's status is the supervisor's;
* a malformed record (not JSON, missing fields, wrong types) is skipped with a note, and the
  records after it are still read;
* a ``file`` record moves a regular file from ``spool/files/`` (never a link, never from
  outside the spool) to a place inside the run's artifacts (never through a link);
* a ``model`` record (``run.register_model`` in the job) needs a valid model name, a relative
  path without ``..`` and plain tags; it is kept in the run's folder and registered only from
  files the run itself kept, once its outputs are collected.

Notes go to the run's log (at most :data:`MAX_NOTES`, then a count). Only complete lines are
read; the byte offset per spool file is stored with the records in one transaction
(:meth:`RunStore.apply`), so any process that ingests later — the supervisor, or whoever finds
the supervisor dead — goes on exactly where the last one stopped.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ferry.status import RunStatus
from ferry.tracking import ArtifactRecord, MetricSeries, RunQuery, RunRecord, RunStore
from ferry.tracking.base import (
    AddArtifacts,
    AddProperties,
    CreateRun,
    RemoveTags,
    SetStatus,
    SetTags,
    StoreOp,
)

log = logging.getLogger("ferry.ingest")

MAX_NOTES = 20
#: in the run's folder: the job's ``register_model`` calls, registered once outputs are kept
PENDING_MODELS = "models.pending.jsonl"
READ_CHUNK = 8 << 20  # bytes of one spool file read per poll
_CHILD_STATUSES = {
    RunStatus.RUNNING,
    RunStatus.COMPLETED,
    RunStatus.FAILED,
    RunStatus.CANCELED,
}
_METRIC_TYPES = {
    "scalar",
    "list",
    "row",
    "table",
    "image",
    "confusion_matrix",
    "accuracy_table",
    "residuals",
    "predictions",
}


class Malformed(ValueError):
    """A spool record that is not what the protocol says."""


def artifact_dir(workspace_path: Path, run_id: str) -> Path:
    return workspace_path / "runs" / run_id / "artifacts"


def safe_artifact_name(name: str) -> str | None:
    """The name with forward slashes, or None when it is absolute or climbs out with '..'."""
    if not isinstance(name, str) or "\x00" in name:
        return None
    norm = name.replace("\\", "/")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if not parts or norm.startswith("/") or ".." in parts:
        return None
    return "/".join(parts)


def valid_run_id(run_id: object) -> str | None:
    """``run_id`` when it can name one folder, else None."""
    if not isinstance(run_id, str) or not 0 < len(run_id) <= 255:
        return None
    if run_id in (".", "..") or any(c in run_id for c in "/\\") or not run_id.isprintable():
        return None
    return run_id


def safe_destination(root: Path, name: str) -> Path | None:
    """``root / name`` when no existing folder on the way is a symbolic link (a job's link must
    never lead a write out of the run's artifacts), else None."""
    dest = root
    for part in name.split("/")[:-1]:
        dest = dest / part
        try:
            mode = os.lstat(dest).st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(mode):
            return None
    dest = dest / name.split("/")[-1]
    try:
        if stat.S_ISLNK(os.lstat(dest).st_mode):
            return None
    except FileNotFoundError:
        pass
    return dest


def output_records(
    outputs: Path, workspace_path: Path, run_id: str, note: Callable[[str], None]
) -> list[ArtifactRecord]:
    """A run's collected ./outputs as artifacts, made private to the user like the rest of the
    workspace; links the job made are left out, with a note."""
    records = []
    for folder, dirs, files in os.walk(outputs):  # never follows links
        os.chmod(folder, 0o700)
        for name in sorted(files) + [d for d in dirs if (Path(folder) / d).is_symlink()]:
            path = Path(folder) / name
            rel = f"outputs/{path.relative_to(outputs).as_posix()}"
            if path.is_symlink():
                note(f"ferry: {rel} is a symbolic link; links are not kept as outputs")
                continue
            if path.is_file():
                path.chmod(path.stat().st_mode & 0o700)
                size = path.stat().st_size
                records.append(
                    ArtifactRecord(run_id, rel, str(path.relative_to(workspace_path)), size)
                )
        dirs[:] = sorted(d for d in dirs if not (Path(folder) / d).is_symlink())
    return records


def move_outputs(source: Path, dest: Path) -> None:
    """Move a job's ./outputs into the run's artifacts; a move cut short earlier is finished."""
    if not source.is_dir() or source.is_symlink():
        return
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(source), str(dest))
        return
    for entry in os.scandir(source):
        target = dest / entry.name
        if entry.is_dir(follow_symlinks=False) and target.is_dir() and not target.is_symlink():
            move_outputs(Path(entry.path), target)
        elif not target.exists() and not target.is_symlink():
            shutil.move(entry.path, str(target))


class SpoolIngestor:
    """Incremental, checked reader of one run's spool folder."""

    def __init__(
        self,
        store: RunStore,
        run_id: str,
        spool_dir: Path,
        workspace_path: Path,
        note: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.spool_dir = spool_dir
        self.workspace_path = workspace_path
        self._note = note
        self._offsets: dict[str, int] = store.get_spool_cursor(run_id)
        self._allowed: set[str] | None = None
        self._parent: RunRecord | None = None
        self.records = 0
        self.metric_values = 0
        self.refused = 0
        self._notes = 0

    # reading ---------------------------------------------------------------------------------
    def _chunks(self) -> Iterator[tuple[str, int, list[bytes]]]:
        """(file name, offset after the complete lines read, those lines) per spool file."""
        try:
            names = sorted(n for n in os.listdir(self.spool_dir) if n.endswith(".jsonl"))
        except OSError:
            return
        for name in names:
            path = self.spool_dir / name
            offset = self._offsets.get(name, 0)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    continue
                data = os.pread(fd, READ_CHUNK, offset)
            finally:
                os.close(fd)
            end = data.rfind(b"\n")
            if end < 0:
                if len(data) >= READ_CHUNK:  # one line longer than a chunk: skip it whole
                    self.note(f"a spool line longer than {READ_CHUNK} bytes in {name} was skipped")
                    yield name, offset + len(data), []
                continue
            yield name, offset + end + 1, data[: end + 1].splitlines()

    def poll(self) -> int:
        """Ingest the complete records written since the last call; returns how many were read."""
        chunks = list(self._chunks())
        if not chunks:
            return 0
        ops: list[StoreOp] = []
        count = 0
        for name, _offset, lines in chunks:
            for number, rec in _decode(lines):
                count += 1
                try:
                    ops.extend(self._ops(rec))
                except Malformed as exc:
                    self.refused += 1
                    self.note(f"spool record ignored ({name}, record {number}): {exc}")
        cursor = dict(self._offsets)
        cursor.update({name: offset for name, offset, _lines in chunks})
        for warning in self.store.apply(_merge(ops), cursor=(self.run_id, cursor)):
            self.refused += 1
            self.note(f"spool record not applied: {warning}")
            self._forget_refused_child(warning)
        self._offsets = cursor
        self.records += count
        return count

    def resync(self) -> None:
        """Go on from the offsets stored in the history (another reader may have moved on)."""
        self._offsets = self.store.get_spool_cursor(self.run_id)

    def drain(self) -> int:
        """Ingest everything there is (the last read of a run)."""
        total = 0
        while True:
            count = self.poll()
            total += count
            if not count:
                return total

    def note(self, message: str) -> None:
        """A note in the run's log about the spool (bounded: a job cannot flood the log)."""
        self._notes += 1
        log.warning("run %s: %s", self.run_id, message)
        if self._note is None:
            return
        if self._notes <= MAX_NOTES:
            self._note(f"ferry: {message}")
        elif self._notes == MAX_NOTES + 1:
            self._note("ferry: more spool records were ignored; see the supervisor's log")

    # checking ----------------------------------------------------------------------------------
    def _allowed_runs(self) -> set[str]:
        """This run and its descendants already in the history (a later reader's view)."""
        if self._allowed is None:
            allowed = {self.run_id}
            frontier = [self.run_id]
            while frontier:
                parent = frontier.pop()
                for child in self.store.list_runs(RunQuery(parent_id=parent)):
                    if child.id not in allowed:
                        allowed.add(child.id)
                        frontier.append(child.id)
            self._allowed = allowed
        return self._allowed

    def _run_of(self, rec: dict[str, Any]) -> str:
        run = rec.get("run")
        if run is None:
            return self.run_id
        if valid_run_id(run) is None:
            raise Malformed(f"'run' is not a valid run id: {_short(run)}")
        if run not in self._allowed_runs():
            raise Malformed(
                f"it names run {_short(run)}, which is neither this run nor a child it created"
            )
        return str(run)

    def _ops(self, rec: dict[str, Any]) -> list[StoreOp]:
        if "_bad" in rec:
            raise Malformed(f"not a JSON object: {_short(rec['_bad'])}")
        kind = rec.get("k")
        if kind == "child":
            return [self._child(rec)]
        run_id = self._run_of(rec)
        if kind == "metric":
            self.metric_values += 1
            return [
                MetricSeries(
                    run_id,
                    _name(rec),
                    _type(rec),
                    [rec.get("value")],
                    None if rec.get("step") is None else [_step(rec.get("step"))],
                    [_ts(rec.get("ts"))],
                    _desc(rec),
                )
            ]
        if kind == "series":
            return [self._series(run_id, rec)]
        if kind == "tags":
            tags = _mapping(rec, "set")
            return [
                SetTags(run_id, {_key(k): None if v is None else _text(v) for k, v in tags.items()})
            ]
        if kind == "untag":
            keys = rec.get("keys")
            if not isinstance(keys, list):
                raise Malformed("'keys' must be a list of tag names")
            return [RemoveTags(run_id, tuple(_key(k) for k in keys))]
        if kind == "props":
            props = _mapping(rec, "set")
            return [AddProperties(run_id, {_key(k): _text(v) for k, v in props.items()})]
        if kind == "file":
            artifact = self._take_file(run_id, rec.get("name"), rec.get("path"))
            return [AddArtifacts((artifact,))]
        if kind == "status":
            return [self._status(run_id, rec)]
        if kind == "model":
            self._pending_model(run_id, rec)
            return []
        if kind == "error":  # the runtime could not encode a record: say what it was
            self.note(f"the job's runtime could not record something: {_short(rec.get('error'))}")
            return []
        raise Malformed(f"unknown kind {_short(kind)}")

    def _pending_model(self, run_id: str, rec: dict[str, Any]) -> None:
        """A ``model`` record (``run.register_model`` in the job), checked, kept in the run's
        folder until the run's outputs are collected (:data:`PENDING_MODELS`). It is written
        before the spool cursor moves, so a crash repeats it at worst; its ``rid`` makes the
        registration happen once."""
        import re

        name = rec.get("name")
        if not isinstance(name, str) or not re.match(r"^[a-zA-Z0-9][a-zA-Z0-9\-._]{0,254}$", name):
            raise Malformed(f"a model name must be letters, digits, '-', '.', '_': {_short(name)}")
        raw_path = rec.get("path")
        path = safe_artifact_name(raw_path) if isinstance(raw_path, str) else None
        if path is None:
            raise Malformed(f"a model path must be a relative path of the run: {_short(raw_path)}")
        rid = rec.get("rid")
        if not isinstance(rid, str) or not re.fullmatch(r"[0-9a-f]{32}", rid):
            raise Malformed(f"'rid' must be 32 hex digits: {_short(rid)}")
        tags = rec.get("tags") or {}
        props = rec.get("properties") or {}
        if not isinstance(tags, dict) or not isinstance(props, dict):
            raise Malformed("'tags' and 'properties' must be objects")
        pairs = rec.get("datasets") or []
        if not isinstance(pairs, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
            for p in pairs
        ):
            raise Malformed("'datasets' must be a list of [scenario, dataset id] pairs")
        texts = {k: rec.get(k) for k in ("description", "framework", "framework_version")}
        if any(v is not None and not isinstance(v, str) for v in texts.values()):
            raise Malformed("description, framework and framework_version must be text or null")
        clean = {
            "rid": rid,
            "run": run_id,
            "name": name,
            "path": path,
            "tags": {_key(k): None if v is None else _text(v) for k, v in tags.items()},
            "properties": {_key(k): _text(v) for k, v in props.items()},
            "datasets": pairs,
            **texts,
        }
        line = (json.dumps(clean, ensure_ascii=True) + "\n").encode("ascii")
        fd = os.open(
            self.spool_dir.parent / PENDING_MODELS, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def _series(self, run_id: str, rec: dict[str, Any]) -> MetricSeries:
        values = rec.get("values")
        if not isinstance(values, list):
            raise Malformed("'values' must be a list")
        steps = rec.get("steps")
        if steps is not None and (not isinstance(steps, list) or len(steps) != len(values)):
            raise Malformed("'steps' must be null or a list as long as 'values'")
        ts = rec.get("ts")
        if isinstance(ts, list) and len(ts) == len(values):
            stamps = [_ts(t) for t in ts]
        else:
            stamps = [_ts(ts if not isinstance(ts, list) else None)] * len(values)
        self.metric_values += len(values)
        return MetricSeries(
            run_id,
            _name(rec),
            _type(rec),
            list(values),
            None if steps is None else [None if s is None else _step(s) for s in steps],
            stamps,
            _desc(rec),
        )

    def _child(self, rec: dict[str, Any]) -> CreateRun:
        child = valid_run_id(rec.get("run"))
        if child is None:
            raise Malformed(f"a child run id must name one folder: {_short(rec.get('run'))}")
        parent = rec.get("parent") or self.run_id
        if parent not in self._allowed_runs():
            raise Malformed(f"child {child}'s parent {_short(parent)} is not this run's")
        if child in self._allowed_runs() or self._exists(child):
            raise Malformed(f"a run {child} exists already")
        name = rec.get("name")
        tags = rec.get("tags") or {}
        if not isinstance(tags, dict):
            raise Malformed("'tags' must be an object")
        if self._parent is None:
            self._parent = self.store.get_run(self.run_id)
        ts = _ts(rec.get("ts"))
        self._allowed_runs().add(child)
        return CreateRun(
            RunRecord(
                id=child,
                experiment=self._parent.experiment,
                status=RunStatus.RUNNING,
                parent_id=str(parent),
                target=self._parent.target,
                run_type="ferry.childrun",
                display_name=None if name is None else _text(name),
                created_at=ts,
                start_time=ts,
                tags={_key(k): None if v is None else _text(v) for k, v in tags.items()},
                run_dir=self._parent.run_dir,
            )
        )

    def _exists(self, run_id: str) -> bool:
        from ferry.errors import RunNotFound

        try:
            self.store.get_run(run_id)
        except RunNotFound:
            return False
        return True

    def _forget_refused_child(self, warning: str) -> None:
        if self._allowed is None:
            return
        for run_id in list(self._allowed):
            if run_id != self.run_id and run_id in warning and not self._exists(run_id):
                self._allowed.discard(run_id)

    def _status(self, run_id: str, rec: dict[str, Any]) -> SetStatus:
        if run_id == self.run_id:
            raise Malformed("a job cannot set its own run's status (the supervisor does)")
        try:
            status = RunStatus(str(rec.get("status")))
        except ValueError:
            raise Malformed(f"unknown status {_short(rec.get('status'))}") from None
        if status not in _CHILD_STATUSES:
            raise Malformed(f"a child run cannot be set to {status.value}")
        error = rec.get("error")
        details = {"error": {"code": "UserError", "message": _text(error)}} if error else None
        return SetStatus(run_id, status, details, _ts(rec.get("ts")))

    def _take_file(self, run_id: str, name: object, rel_path: object) -> ArtifactRecord:
        clean = safe_artifact_name(name) if isinstance(name, str) else None
        if clean is None:
            raise Malformed(f"unsafe artifact name {_short(name)}")
        rel = safe_artifact_name(rel_path) if isinstance(rel_path, str) else None
        if rel is None or not rel.startswith("files/"):
            raise Malformed(f"the file must be under the spool's files/: {_short(rel_path)}")
        arts = artifact_dir(self.workspace_path, run_id)
        dest = safe_destination(arts, clean)
        if dest is None:
            raise Malformed(f"artifact {clean!r} would be written through a link")
        src = self.spool_dir / rel
        try:
            mode = os.lstat(src).st_mode
        except FileNotFoundError:
            mode = None
        if mode is None:
            # moved by an earlier ingest that stopped before recording it: record it now
            if dest.is_file() and not dest.is_symlink():
                return self._artifact(run_id, clean, dest)
            raise Malformed(f"artifact {clean!r}: no file at {rel!r}")
        real = Path(os.path.realpath(src))
        if not stat.S_ISREG(mode) or not real.is_relative_to(os.path.realpath(self.spool_dir)):
            raise Malformed(f"artifact {clean!r}: {rel!r} is not a regular file of the spool")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(src), str(dest))
        return self._artifact(run_id, clean, dest)

    def _artifact(self, run_id: str, name: str, dest: Path) -> ArtifactRecord:
        return ArtifactRecord(
            run_id, name, str(dest.relative_to(self.workspace_path)), dest.stat().st_size
        )


# record fields ---------------------------------------------------------------------------------
def _decode(lines: list[bytes]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(number, record) for each well-formed line; all at once when every line parses."""
    lines = [line for line in lines if line.strip()]
    try:
        records = json.loads(b"[" + b",".join(lines) + b"]")
    except (ValueError, RecursionError):
        records = None
    if records is not None:
        for number, rec in enumerate(records, 1):
            yield number, rec if isinstance(rec, dict) else {"k": None, "_bad": rec}
        return
    for number, line in enumerate(lines, 1):
        try:
            rec = json.loads(line)
        except (ValueError, RecursionError):
            rec = {"k": None, "_bad": "not JSON"}
        yield number, rec if isinstance(rec, dict) else {"k": None, "_bad": rec}


def _merge(ops: list[StoreOp]) -> list[StoreOp]:
    """Values of one metric between two other records become one series (few, large rows);
    the order within a metric, and around every other record, is kept."""
    out: list[StoreOp] = []
    slots: dict[tuple[str, str, str, str], MetricSeries] = {}
    for op in ops:
        if not isinstance(op, MetricSeries):
            out.append(op)
            slots = {}
            continue
        key = (op.run_id, op.name, op.type, op.description)
        into = slots.get(key)
        if into is None:
            slots[key] = op
            out.append(op)
            continue
        if into.steps is not None or op.steps is not None:
            if into.steps is None:
                into = _with_steps(into, out, slots, key)
            assert into.steps is not None
            into.steps.extend(op.steps if op.steps is not None else [None] * len(op.values))
        into.values.extend(op.values)
        into.ts.extend(op.ts)
    return out


def _with_steps(
    series: MetricSeries,
    out: list[StoreOp],
    slots: dict[tuple[str, str, str, str], MetricSeries],
    key: tuple[str, str, str, str],
) -> MetricSeries:
    """The same series with an explicit step list (None per value so far), in place in ``out``."""
    stepped = series._replace(steps=[None] * len(series.values))
    out[next(i for i, op in enumerate(out) if op is series)] = stepped
    slots[key] = stepped
    return stepped


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _name(rec: dict[str, Any]) -> str:
    name = rec.get("name")
    if not isinstance(name, str) or not name:
        raise Malformed(f"a metric needs a non-empty 'name', got {_short(name)}")
    return _utf8(name)


def _type(rec: dict[str, Any]) -> str:
    kind = rec.get("type", "scalar")
    if kind not in _METRIC_TYPES:
        raise Malformed(f"unknown metric type {_short(kind)}")
    return str(kind)


def _desc(rec: dict[str, Any]) -> str:
    desc = rec.get("desc")
    return desc if isinstance(desc, str) else ""


def _step(step: object) -> int:
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise Malformed(f"a step must be a whole number ≥ 0, got {_short(step)}")
    return step


def _ts(ts: object) -> float:
    if isinstance(ts, int | float) and not isinstance(ts, bool) and math.isfinite(ts):
        return float(ts)
    return time.time()


def _utf8(text: str) -> str:
    """``text`` as stored in a text column: a lone surrogate becomes its escape (``\\udc80``)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise Malformed(f"names must be non-empty strings, got {_short(key)}")
    return _utf8(key)


def _text(value: object) -> str:
    return _utf8(value if isinstance(value, str) else str(value))


def _mapping(rec: dict[str, Any], field: str) -> dict[str, Any]:
    value = rec.get(field)
    if not isinstance(value, dict):
        raise Malformed(f"'{field}' must be an object")
    return value
