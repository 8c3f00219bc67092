"""Model versions as content: files into the blob store, a manifest, a record of what made them.

A model version is a manifest in the workspace's content-addressed blob store, like a
snapshot: ``root`` is the registered file's or folder's name and every entry sits below it, so
a download recreates ``<target>/<root>``. Files kept with a run (its outputs and uploads, private
and never written again) enter the blob store as hard links — no byte is copied — and their
digests are remembered per run (``runs/<id>/digests``: size, time and inode; taken when the run's
outputs were collected, so registering a run's 500 MB model only looks them up); a local file or
folder (``Model.register``) is copied in.

Example::

    record = register_from_run(ws, "exp_1_ab", "outputs/model.pkl", name="sk")
    download(ws, record, Path("models"), exist_ok=False)     # models/model.pkl
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import stat
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from ferry.errors import ConfigError
from ferry.snapshot import FileEntry, Manifest, load_manifest, save_manifest
from ferry.snapshot.digest import hash_fd
from ferry.snapshot.manifest import EXECUTABLE, REGULAR
from ferry.snapshot.statcache import StatCache
from ferry.spec import WorkspaceServices
from ferry.tracking.assets import ModelRecord, asset_store
from ferry.tracking.base import ArtifactRecord

DIGESTS_DIR = "digests"  # under the run's folder: the digest cache of its kept files


class ModelPathNotFoundException(ConfigError):
    """``register_model`` of a path the run did not produce (the reference's name)."""


def run_digests(ws: WorkspaceServices, run_id: str) -> tuple[Path, str]:
    """Where a run's digest cache is (its folder, and the cache's key)."""
    return Path(ws.runs_dir) / run_id / DIGESTS_DIR, f"run:{run_id}"


def hash_kept_files(ws: WorkspaceServices, run_id: str, paths: Iterable[Path]) -> None:
    """Hash a run's kept files now (when its outputs are collected) and remember the digests,
    so that registering any of them later costs a lookup."""
    cache = StatCache.load(*run_digests(ws, run_id), ws.blobs.algo)
    entries = dict(cache.entries)
    for path in paths:
        digest_of(path, entries)
    if entries != cache.entries:
        cache.save(entries, "", None)


def digest_of(path: Path, entries: dict[str, list[object]]) -> tuple[str, os.stat_result]:
    """The file's digest from ``entries`` when its stat is unchanged, else read (and kept)."""
    key = os.path.realpath(path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{path} is not a regular file")
        # no ctime: kept files are made read-only (a chmod) after they were hashed
        stamp: list[object] = [st.st_size, st.st_mtime_ns, st.st_ino]
        hit = entries.get(key)
        if hit is not None and hit[:-1] == stamp:
            return str(hit[-1]), st
        digest, _ = hash_fd(fd)
    finally:
        os.close(fd)
    entries[key] = [*stamp, digest]
    return digest, st


_link_lock = threading.Lock()


def link_in(ws: WorkspaceServices, path: Path, digest: str, st: os.stat_result) -> bool:
    """Make ``path`` (a private, never-rewritten file of a run) the blob ``digest`` by a hard
    link: no copy. Falls back to a copy across file systems. True when the blob was new."""
    blobs = ws.blobs
    final = blobs.path(digest)
    if not blobs.lacking({digest: st.st_size}):
        return False
    final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.{threading.get_ident()}.link")
    with _link_lock:
        try:
            os.link(path, tmp, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                return blobs.put_file(path, digest)
            raise
        try:
            now = os.lstat(tmp)
            if (now.st_size, now.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
                raise ConfigError(f"{path} changed while it was being registered; try again")
            os.chmod(tmp, 0o400)  # the blob store's mode (the kept file shares it: read-only)
            os.replace(tmp, final)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return True


def manifest_of(
    ws: WorkspaceServices, files: Sequence[tuple[str, Path]], *, link: bool, cache: tuple[Path, str]
) -> Manifest:
    """The manifest of ``(path in the model, file on disk)`` pairs, every blob stored: linked
    (a run's kept files) or copied (anything else); ``cache`` is the digest cache to use."""
    digests = StatCache.load(*cache, ws.blobs.algo)
    entries_cache = dict(digests.entries)
    entries: dict[str, FileEntry] = {}
    for rel, path in files:
        digest, st = digest_of(path, entries_cache)
        if link:
            link_in(ws, path, digest, st)
        elif ws.blobs.lacking({digest: st.st_size}):
            ws.blobs.put_file(path, digest)
        entries[rel] = FileEntry(digest, st.st_size, EXECUTABLE if st.st_mode & 0o100 else REGULAR)
    if entries_cache != digests.entries:
        digests.save(entries_cache, "", None)
    manifest = Manifest(entries, ws.blobs.algo)
    save_manifest(ws.blobs, manifest)
    return manifest


def run_files(
    ws: WorkspaceServices, run_id: str, model_path: str, artifacts: Sequence[ArtifactRecord]
) -> tuple[str, bool, list[tuple[str, Path]]]:
    """(root name, is one file, [(path in the model, file)]) for a run artifact path: the file
    of that name, or every file below that folder. ModelPathNotFoundException otherwise."""
    # the reference normalises the path first: './outputs/model.pkl' and 'outputs/m/' work
    wanted = posixpath.normpath(model_path.replace("\\", "/")).strip("/")
    wanted = "" if wanted == "." else wanted
    kept = {a.name: a for a in artifacts}
    if wanted in kept:
        chosen = [(wanted.rsplit("/", 1)[-1], kept[wanted])]
        is_file = True
    else:
        prefix = wanted + "/"
        chosen = [(a.name[len(prefix) :], a) for a in artifacts if a.name.startswith(prefix)]
        is_file = False
    if not wanted or not chosen:
        names = sorted(kept)
        shown = names[:50] + (["…"] if len(names) > 50 else [])
        raise ModelPathNotFoundException(
            f"Could not locate the provided model_path {model_path} in the set of files uploaded "
            f"to the run: {shown}. See https://aka.ms/run-logging for more details."
        )
    root = wanted.rsplit("/", 1)[-1]
    files = []
    base = Path(ws.path).resolve()
    for rel, artifact in chosen:
        path = (base / artifact.path).resolve()
        if not path.is_relative_to(base / "runs") or path.is_symlink() or not path.is_file():
            raise ModelPathNotFoundException(
                f"{artifact.name} of run {run_id} is not a file the run kept; it cannot be part "
                "of a model"
            )
        files.append((rel if is_file else f"{root}/{rel}", path))
    return root, is_file, files


def register_from_run(
    ws: WorkspaceServices,
    run_id: str,
    model_path: str,
    record: ModelRecord,
    dataset_ids: Sequence[tuple[str, str]] = (),
    artifacts: Sequence[ArtifactRecord] | None = None,
) -> ModelRecord:
    """Register the run's kept files at ``model_path`` as ``record.name``'s next version, with
    what produced them: the run, its snapshot, its environment, the datasets it read.
    ``artifacts`` are the run's kept files (default: as indexed in the history)."""
    run = ws.store.get_run(run_id)
    kept = ws.store.list_artifacts(run_id) if artifacts is None else artifacts
    root, is_file, files = run_files(ws, run_id, model_path, kept)
    manifest = manifest_of(ws, files, link=True, cache=run_digests(ws, run_id))
    assets = asset_store(ws.store)
    inputs = [
        ("training", r.dataset_id)
        for r in assets.list_run_datasets(run_id)
        if r.direction == "input"
    ]
    datasets = tuple(dict.fromkeys([*dataset_ids, *inputs]))
    return assets.register_model(
        replace(
            record,
            manifest_id=manifest.snapshot_id,
            root=root,
            is_file=is_file,
            files=len(manifest),
            bytes=manifest.total_bytes,
            run_id=run_id,
            experiment=run.experiment,
            snapshot_id=(run.snapshot or {}).get("id"),
            environment_hash=run.properties.get("ferry.environment.hash"),
            datasets=datasets,
        )
    )


def register_from_path(
    ws: WorkspaceServices,
    path: Path,
    record: ModelRecord,
    dataset_ids: Sequence[tuple[str, str]] = (),
) -> ModelRecord:
    """Register a local file or folder (copied into the blob store)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelPathNotFoundException(
            f"model_path {str(path)!r} does not exist (looked from {os.getcwd()}); give the "
            "path of the file or folder to register"
        )
    root = path.resolve().name
    if path.is_file():
        files = [(root, path)]
    else:
        files = [
            (f"{root}/{p.relative_to(path).as_posix()}", p)
            for p in sorted(path.rglob("*"))
            if p.is_file() and not p.is_symlink()
        ]
        if not files:
            raise ModelPathNotFoundException(f"model_path {str(path)!r} holds no file")
    manifest = manifest_of(ws, files, link=False, cache=(Path(ws.cache_dir) / "models", "local"))
    return asset_store(ws.store).register_model(
        replace(
            record,
            manifest_id=manifest.snapshot_id,
            root=root,
            is_file=path.is_file(),
            files=len(manifest),
            bytes=manifest.total_bytes,
            datasets=tuple(dataset_ids),
        )
    )


def download(ws: WorkspaceServices, record: ModelRecord, target_dir: Path, exist_ok: bool) -> Path:
    """Write the model into ``target_dir`` (``target_dir/<root>``); returns that path."""
    manifest = load_manifest(ws.blobs, record.manifest_id)
    target = Path(target_dir).expanduser()
    target.mkdir(parents=True, exist_ok=True)
    root = os.path.realpath(target)
    for rel, entry in manifest.files():
        folder = os.path.join(root, os.path.dirname(rel))
        os.makedirs(folder, exist_ok=True)
        if not os.path.realpath(folder).startswith(root):
            raise ConfigError(f"{folder} leads out of {root} (a link?); refusing to write there")
        dest = Path(folder, os.path.basename(rel))
        if dest.exists() or dest.is_symlink():
            if not exist_ok:
                raise ConfigError(f"{dest} exists already; pass exist_ok=True to replace it")
            dest.unlink()
        ws.blobs.link_or_copy(entry.digest, dest, entry.mode)
    return target / record.root


def check_model_name(name: object) -> str:
    import re

    if not isinstance(name, str) or not re.match(r"^[a-zA-Z0-9][a-zA-Z0-9\-\._]{0,254}$", name):
        raise ConfigError(
            f"model name {name!r} is not valid: start with a letter or digit, then letters, "
            "digits, '-', '.' or '_' (at most 255 characters)"
        )
    return name


def check_tags(value: Mapping[str, object] | None, what: str = "tags") -> dict[str, str | None]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{what} must be a dict of names to values")
    return {str(k): None if v is None else str(v) for k, v in value.items()}


def blank(name: str) -> ModelRecord:
    """A record to fill in (content and provenance come from the register functions)."""
    return ModelRecord(name=name, manifest_id="", root="", is_file=True, files=0, bytes=0)


def model_manifest(ws: WorkspaceServices, record: ModelRecord) -> Manifest:
    return load_manifest(ws.blobs, record.manifest_id)
