"""A run's folder on the server, read and written for clients: logs, the done marker, files.

The library under the server's file routes. A client following a run (``ferry runs logs -f``,
``wait_for_completion``) asks what the run folder holds (:func:`folder_state`) and reads each
log from where it stopped (:func:`read_log`); files kept with a run are read through the
artifact index (:func:`artifact_file`) and written by :func:`save_artifact` (temporary file,
then a rename, then the index — never a half-written file). Names are checked as ingestion
checks a job's (no absolute paths, no ``..``, no symbolic link on the way).

Example::

    state = folder_state(ws, run_id)     # {"logs": {"user_logs/std_log.txt": 1234}, "done": True}
    chunk = read_log(ws, run_id, "user_logs/std_log.txt", offset=1000)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ferry.errors import ConfigError, RunNotFound
from ferry.ingest import artifact_dir, safe_artifact_name, safe_destination, valid_run_id
from ferry.spec import WorkspaceServices
from ferry.tracking import AddArtifacts, ArtifactRecord

LOG_NAME = "user_logs/std_log.txt"
DONE_MARKER = "done"
_RUN_LOG = re.compile(r"^user_logs/std_log(_rank_\d+)?\.txt$")
#: most bytes one log read returns (a client asks again for the rest)
MAX_READ = 16 * 1024 * 1024


def is_run_log(name: str) -> bool:
    """Whether ``name`` is one of a run's logs (``user_logs/std_log.txt``, one per rank):
    the only files the log readers and followers open."""
    return _RUN_LOG.match(name) is not None


def _run_dir(ws: WorkspaceServices, run_id: str) -> Path:
    if valid_run_id(run_id) is None:
        raise ConfigError(f"{run_id!r} is not a run id")
    ws.store.get_run(run_id)  # RunNotFound for a run this workspace does not have
    return ws.runs_dir / run_id


def folder_state(ws: WorkspaceServices, run_id: str) -> dict[str, Any]:
    """The run's log files with their sizes, and whether its supervisor has finished."""
    return scan_folder(_run_dir(ws, run_id))


def state_mark(state: dict[str, Any]) -> str:
    """A short name of a folder state: equal marks, nothing new for a follower."""
    shown = json.dumps([state["done"], sorted(state["logs"].items())]).encode()
    return hashlib.sha256(shown).hexdigest()[:16]


def scan_folder(folder: Path) -> dict[str, Any]:
    """:func:`folder_state` of a run folder already checked (a few stats, no database). The
    done marker is looked at first: when it is there, the sizes read after it are final."""
    done = (folder / DONE_MARKER).exists()
    logs: dict[str, int] = {}
    user_logs = folder / "user_logs"
    try:
        entries = sorted(os.scandir(user_logs), key=lambda e: e.name)
    except OSError:
        entries = []
    for entry in entries:
        name = f"user_logs/{entry.name}"
        if is_run_log(name) and entry.is_file(follow_symlinks=False):
            logs[name] = entry.stat(follow_symlinks=False).st_size
    return {"logs": logs, "done": done}


def read_log(ws: WorkspaceServices, run_id: str, name: str, offset: int = 0) -> bytes:
    """Up to 16 MiB of a log from ``offset`` (nothing when the log is shorter)."""
    if not is_run_log(name):
        raise ConfigError(f"{name!r} is not a run log (user_logs/std_log*.txt)")
    if offset < 0:
        raise ConfigError("a log offset is not negative")
    path = _run_dir(ws, run_id) / name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return b""
    with os.fdopen(fd, "rb") as fh:
        fh.seek(offset)
        return fh.read(MAX_READ)


def artifact_file(ws: WorkspaceServices, run_id: str, name: str) -> Path:
    """The file kept as artifact ``name`` of the run (ConfigError naming the known ones)."""
    _run_dir(ws, run_id)
    clean = safe_artifact_name(name)
    for record in ws.store.list_artifacts(run_id):
        if record.name == clean:
            path = (ws.path / record.path).resolve()
            if not path.is_relative_to(ws.path.resolve()) or not path.is_file():
                break
            return path
    raise RunNotFound(f"run {run_id} keeps no file {name!r}")


def list_artifacts(ws: WorkspaceServices, run_id: str, prefix: str = "") -> list[dict[str, Any]]:
    """MLflow's listing of one folder level: ``{"path", "is_dir", "file_size"}`` entries."""
    _run_dir(ws, run_id)
    base = prefix.strip("/")
    start = f"{base}/" if base else ""
    entries: dict[str, dict[str, Any]] = {}
    for record in ws.store.list_artifacts(run_id):
        if not record.name.startswith(start):
            continue
        rest = record.name[len(start) :]
        head, sep, _ = rest.partition("/")
        path = f"{start}{head}"
        if sep:
            entries.setdefault(path, {"path": path, "is_dir": True})
        else:
            entries[path] = {"path": path, "is_dir": False, "file_size": record.size}
    return [entries[k] for k in sorted(entries)]


def save_artifact(
    ws: WorkspaceServices, run_id: str, name: str, chunks: Iterable[bytes]
) -> ArtifactRecord:
    """Keep ``chunks`` as artifact ``name`` of the run (replacing a file of that name)."""
    _run_dir(ws, run_id)
    clean = safe_artifact_name(name)
    if clean is None:
        raise ConfigError(f"artifact name {name!r} must be relative, without '..' or NUL")
    root = artifact_dir(ws.path, run_id)
    dest = safe_destination(root, clean)
    if dest is None:
        raise ConfigError(f"artifact {clean!r} of run {run_id} would be written through a link")
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
    size = 0
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
                size += len(chunk)
        os.replace(temp, dest)
    finally:
        if temp.exists():
            temp.unlink()
    record = ArtifactRecord(run_id, clean, str(dest.relative_to(ws.path)), size)
    ws.store.apply([AddArtifacts((record,))])
    return record
