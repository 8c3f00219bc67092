"""The UI's read models of one run: its page, its logs a page at a time, its files, its code.

Nothing here returns a whole log, file or series: logs come a page at a time (``offset=-1``
for the tail), files and snapshot files are cut at a limit and marked ``truncated``, binary
content is named, not sent. The run page says exactly what the run used: its snapshot (file
tree, any file), its environment's definition and resolved lock, its git state with the
uncommitted diff, its input and output datasets and the models registered from it.

Example::

    run_page(services, run_id)["environment"]["lock"]     # "numpy==2.1.0\\n…"
    log_page(services, run_id, "user_logs/std_log.txt", offset=-1, limit=65536)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ferry.errors import ConfigError, FerryError, RunNotFound
from ferry.server import runfiles
from ferry.snapshot.manifest import FileEntry, LinkEntry, Manifest
from ferry.snapshot.snapshotter import load_manifest
from ferry.snapshot.textdiff import unified_diff
from ferry.ui import views

if TYPE_CHECKING:
    from ferry.server.services import ServerServices

MAX_LOG_PAGE = 4 << 20
DEFAULT_LOG_PAGE = 256 << 10
MAX_FILE_VIEW = 8 << 20
DEFAULT_FILE_VIEW = 1 << 20
LOCK_ARTIFACT = "environment/lock.txt"
_GIT = ("repository", "branch", "commit", "dirty", "build_id", "build_uri")


def run_page(svc: ServerServices, run_id: str, portal_url: str | None = None) -> dict[str, Any]:
    """Everything the run page shows but the log, metric values and file contents."""
    store = svc.store
    record = svc.read_run(run_id)
    children = store.count_children([record.id]).get(record.id, 0)
    latest = store.latest_metrics([record.id]).get(record.id, {})
    run = views.row(record, latest, children)
    run.update(
        description=record.description,
        properties=dict(record.properties),
        error=record.error,
        host=record.host,
        timings=dict(record.timings),
        definition=record.definition,
        arguments=record.definition.get("arguments", []),
        portal_url=portal_url,
    )
    parent = None
    if record.parent_id:
        try:
            found = store.get_run(record.parent_id)
            parent = views.row(found, {})
        except RunNotFound:
            parent = None
    artifacts = store.list_artifacts(record.id)
    state = runfiles.folder_state(svc.workspace, record.id)
    return {
        "run": run,
        "parent": parent,
        "children": {"total": children},
        "logs": [{"name": n, "size": size} for n, size in state["logs"].items()],
        "files": [
            {"name": a.name, "size": a.size}
            for a in artifacts
            if a.name not in state["logs"]  # the logs are listed once, above
        ],
        "metrics": [
            {"name": n, "type": kind, "count": count}
            for n, kind, count in store.metric_names(record.id)
        ],
        "environment": _environment(svc, record.id, record.definition, record.properties),
        "git": _git(record.properties, record.snapshot),
        "snapshot": _snapshot(record.snapshot),
        "datasets": _datasets(svc, record.id),
        "models": _models(svc, record.id),
        "sweep": _sweep(record.run_type, record.tags),
        "terminal": record.status.is_terminal(),
    }


def log_page(
    svc: ServerServices, run_id: str, name: str, offset: int, limit: int = DEFAULT_LOG_PAGE
) -> dict[str, Any]:
    """``limit`` bytes of a log from ``offset`` (``-1``: its last ``limit`` bytes), cut at a
    line end where one is near, so a page never splits a line the page shows."""
    if not 1 <= limit <= MAX_LOG_PAGE:
        raise ConfigError(f"a log page holds 1 to {MAX_LOG_PAGE} bytes, not {limit}")
    if offset < -1:
        raise ConfigError("a log offset is a byte position, or -1 for the end")
    state = runfiles.folder_state(svc.workspace, run_id)
    if name not in state["logs"] and not runfiles.is_run_log(name):
        raise ConfigError(
            f"{name!r} is not a log of run {run_id}; its logs: {sorted(state['logs'])}"
        )
    size = int(state["logs"].get(name, 0))
    start = max(size - limit, 0) if offset == -1 else offset
    data = runfiles.read_log(svc.workspace, run_id, name, start)[:limit]
    if offset == -1 and start > 0:  # begin the tail at a line start
        cut = data.find(b"\n")
        if 0 <= cut < len(data) - 1:
            start, data = start + cut + 1, data[cut + 1 :]
    elif start + len(data) < size:  # end a middle page at a line end
        cut = data.rfind(b"\n")
        if cut > 0:
            data = data[: cut + 1]
    end = start + len(data)
    return {
        "name": name,
        "offset": start,
        "next_offset": end,
        "size": size,
        "text": data.decode("utf-8", errors="replace"),
        "eof": end >= size,
    }


def file_view(svc: ServerServices, run_id: str, name: str, limit: int) -> dict[str, Any]:
    """The start of a file kept with the run, as text (or named binary)."""
    path = runfiles.artifact_file(svc.workspace, run_id, name)
    with open(path, "rb") as fh:
        data = fh.read(_check_limit(limit) + 1)
    return {"name": name, "size": os.path.getsize(path), **_text_of(data, limit)}


def snapshot_files(svc: ServerServices, run_id: str) -> dict[str, Any]:
    manifest = _manifest(svc, run_id)
    files = []
    for path, entry in manifest.entries.items():
        if isinstance(entry, FileEntry):
            files.append({"path": path, "size": entry.size, "mode": oct(entry.mode)})
        elif isinstance(entry, LinkEntry):
            files.append({"path": path, "size": 0, "mode": "link", "target": entry.target})
    return {"files": files}


def snapshot_file(svc: ServerServices, run_id: str, path: str, limit: int) -> dict[str, Any]:
    manifest = _manifest(svc, run_id)
    entry = manifest.entries.get(path)
    if entry is None:
        raise RunNotFound(f"the snapshot of run {run_id} has no file {path!r}")
    if isinstance(entry, LinkEntry):
        return {"path": path, "size": 0, "text": f"-> {entry.target}", "binary": False,
                "truncated": False}  # fmt: skip
    with svc.blobs.open(entry.digest) as fh:
        data = fh.read(_check_limit(limit) + 1)
    return {"path": path, "size": entry.size, **_text_of(data, limit)}


def diff(svc: ServerServices, a: str, b: str) -> dict[str, Any]:
    """Code diff between two runs' snapshots, and between their environments' locks."""
    code = unified_diff(_manifest(svc, a), _manifest(svc, b), svc.blobs)
    lock_a, lock_b = _lock(svc, a) or "", _lock(svc, b) or ""
    import difflib

    env = "".join(
        difflib.unified_diff(
            lock_a.splitlines(keepends=True),
            lock_b.splitlines(keepends=True),
            fromfile=f"{a}/environment/lock.txt",
            tofile=f"{b}/environment/lock.txt",
        )
    )
    return {
        "code": code,
        "environment": env,
        "same_code": not code,
        "same_environment": lock_a == lock_b,
    }


def _check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_FILE_VIEW:
        raise ConfigError(f"a file view holds 1 to {MAX_FILE_VIEW} bytes, not {limit}")
    return limit


def _text_of(data: bytes, limit: int) -> dict[str, Any]:
    truncated = len(data) > limit
    data = data[:limit]
    if b"\0" in data[:8192]:
        return {"text": None, "binary": True, "truncated": truncated}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not truncated or exc.start < len(data) - 4:  # not just a character cut in two
            return {"text": None, "binary": True, "truncated": truncated}
        text = data[: exc.start].decode("utf-8")
    return {"text": text, "binary": False, "truncated": truncated}


def _manifest(svc: ServerServices, run_id: str) -> Manifest:
    record = svc.store.get_run(run_id)
    snapshot_id = (record.snapshot or {}).get("id") or record.properties.get("ContentSnapshotId")
    if not snapshot_id:
        raise RunNotFound(f"run {run_id} has no snapshot (it was not submitted from a folder)")
    return load_manifest(svc.blobs, str(snapshot_id))


def _lock(svc: ServerServices, run_id: str) -> str | None:
    try:
        path = runfiles.artifact_file(svc.workspace, run_id, LOCK_ARTIFACT)
    except RunNotFound:
        return None
    with open(path, "rb") as fh:
        return fh.read(MAX_FILE_VIEW).decode("utf-8", errors="replace")


def _environment(
    svc: ServerServices,
    run_id: str,
    definition: Mapping[str, Any],
    properties: Mapping[str, str],
) -> dict[str, Any] | None:
    env = definition.get("environment")
    if not isinstance(env, dict):
        return None
    return {
        "name": env.get("name"),
        "version": env.get("version"),
        "hash": properties.get("ferry.environment.hash"),
        "lock": _lock(svc, run_id),
        "definition": env,
    }


def _git(
    properties: Mapping[str, str], snapshot: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    found: dict[str, Any] = {}
    for key in _GIT:
        value = properties.get(f"ferry.git.{key}") or properties.get(f"azureml.git.{key}")
        if value is not None:
            found[key] = value
    if not found:
        return None
    found["dirty"] = str(found.get("dirty", "")).lower() == "true"
    git = (snapshot or {}).get("git") or {}
    found["diff"] = git.get("diff") if isinstance(git, dict) else None
    found["untracked"] = git.get("untracked", []) if isinstance(git, dict) else []
    return found


def _snapshot(snapshot: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not snapshot or not snapshot.get("id"):
        return None
    return {k: snapshot.get(k) for k in ("id", "files", "bytes")}


def _datasets(svc: ServerServices, run_id: str) -> dict[str, list[dict[str, Any]]]:
    from ferry.tracking.assets import asset_store

    assets = asset_store(svc.store)
    out: dict[str, list[dict[str, Any]]] = {"inputs": [], "outputs": []}
    for record in assets.list_run_datasets(run_id, None):
        side = "inputs" if record.direction == "input" else "outputs"
        entry: dict[str, Any] = {
            "name": record.name,
            "id": record.dataset_id,
            "mechanism": record.mechanism,
            "dataset": None,
            "version": None,
        }
        try:
            found = assets.get_dataset_by_id(record.dataset_id)
            entry.update(dataset=found.name, version=found.version)
        except FerryError:  # unregistered since, or saved without a name
            pass
        out[side].append(entry)
    return out


def _models(svc: ServerServices, run_id: str) -> list[dict[str, Any]]:
    from ferry.tracking.assets import asset_store

    return [
        {"name": m.name, "version": m.version, "files": m.files, "bytes": m.bytes}
        for m in asset_store(svc.store).list_models(None, run_id, False)
    ]


def _sweep(run_type: str, tags: Mapping[str, str | None]) -> dict[str, Any] | None:
    if views.HYPERDRIVE not in run_type.lower():
        return None
    config = views._json_tag(tags.get("primary_metric_config"))
    return {"primary_metric": config.get("name"), "goal": config.get("goal", "maximize")}
