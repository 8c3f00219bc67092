"""Dataset versions as content: list the sources, hash the files, keep a listing, fetch bytes.

A version is fixed when it is saved: :func:`snapshot_dataset` lists what its definition
matches, hashes every file (a per-store fingerprint cache skips files unchanged since they were
last hashed: size, time and inode on disk; size and ETag remotely) and stores a *listing* in the
workspace's blob store — each file's digest, size and origin (source, path, fingerprint). Files
on this machine's disk (the default datastore, folder datastores, local paths) are copied into
the blob store at once, so the version's bytes are kept whatever happens to the folder later;
remote files are hashed as they stream and fetched into the blob store when first used.

:func:`ensure_local` makes every blob of a version present (fetching, and verifying against the
listing: a file whose content changed in its datastore raises :class:`~.errors.DatasetChanged`
naming it, never giving the new bytes) and stores the version's manifest — a snapshot-format
manifest, so targets ship and materialise it like a snapshot. The manifest blob is stored only
once all its blobs are there (the blob store's rule).

Example::

    record, listing = snapshot_dataset(ws, definition)
    manifest = ensure_local(ws, record)          # every file's bytes in ws.blobs now
"""

from __future__ import annotations

import json
import os
import posixpath
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ferry.data.catalog import open_datastore
from ferry.data.definition import apply_transforms, merge_sources, rel_paths
from ferry.data.errors import DataPathNotFound, DatasetChanged, DatastoreUnavailable
from ferry.data.stores import DatastoreSpec, StoreFS, clean_rel
from ferry.errors import ConfigError, FerryError
from ferry.snapshot import FileEntry, Manifest, save_manifest
from ferry.snapshot.digest import CHUNK, hash_fd, new_hasher
from ferry.snapshot.manifest import check_entry_path
from ferry.snapshot.statcache import StatCache
from ferry.spec import WorkspaceServices
from ferry.tracking.assets import DatasetRecord, new_dataset_id

LISTING_FORMAT = "ferry-dataset-listing"
_THREADS = 4
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Origin:
    """Where a dataset file came from: source index, path there, fingerprint when hashed."""

    source: int
    path: str
    fingerprint: tuple[Any, ...]


@dataclass(frozen=True)
class Listing:
    """A version's files (a manifest) and where each came from."""

    manifest: Manifest
    origins: Mapping[str, Origin]

    def document(self) -> bytes:
        entries = {
            rel: {
                "digest": entry.digest,
                "size": entry.size,
                "source": self.origins[rel].source,
                "path": self.origins[rel].path,
                "fingerprint": list(self.origins[rel].fingerprint),
            }
            for rel, entry in self.manifest.files()
        }
        body = {
            "format": LISTING_FORMAT,
            "version": 1,
            "algo": self.manifest.algo,
            "entries": entries,
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")

    @classmethod
    def parse(cls, data: bytes) -> Listing:
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("format") != LISTING_FORMAT:
            raise ConfigError("not a ferry dataset listing")
        entries: dict[str, FileEntry] = {}
        origins: dict[str, Origin] = {}
        for rel, item in doc["entries"].items():
            check_entry_path(rel)
            entries[rel] = FileEntry(str(item["digest"]), int(item["size"]))
            origins[rel] = Origin(
                int(item["source"]), str(item["path"]), tuple(item["fingerprint"])
            )
        return cls(Manifest(entries, str(doc["algo"])), origins)


@dataclass
class _Found:
    """One file a definition matches, before hashing."""

    rel: str
    origin: Origin
    size: int
    local: str | None  # a path on this machine's disk, when the file is one


# listing the sources ---------------------------------------------------------------------------
def _source_store(ws: WorkspaceServices, source: Mapping[str, str]) -> tuple[StoreFS, str]:
    """The file system a source lives on and its pattern there."""
    from ferry.data.stores import open_store

    if "datastore" in source:
        return open_datastore(ws, source["datastore"]), clean_rel(source.get("path") or "")
    if "local" in source:
        local = os.path.abspath(source["local"])
        return open_store(
            DatastoreSpec("local", "folder", {"path": "/"}), Path(ws.path)
        ), local.lstrip("/")
    url = source["url"]
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise ConfigError(f"cannot read the URL {url!r}: {exc}") from None
    return StoreFS(DatastoreSpec(url, "url", {"url": url}), fs, "", []), path


def list_files(ws: WorkspaceServices, definition: Mapping[str, Any]) -> list[_Found]:
    """The files ``definition`` matches now, in dataset order (file transforms applied)."""
    if definition.get("base"):
        return [f for f, _ in _from_base(ws, definition)]
    per_source: list[dict[str, tuple[str, int, tuple[Any, ...], str | None]]] = []
    for index, source in enumerate(definition.get("sources") or []):
        per_source.append(_match(ws, source, index))
    merged = merge_sources(per_source)
    found = [
        _Found(rel, Origin(index, origin[0], origin[2]), origin[1], origin[3])
        for rel, (index, origin) in merged.items()
    ]
    if definition.get("kind") == "file":
        found = apply_transforms(found, definition.get("transforms") or [])
    return found


def _match(
    ws: WorkspaceServices, source: Mapping[str, str], index: int
) -> dict[str, tuple[str, int, tuple[Any, ...], str | None]]:
    url = source.get("url")
    if url and url.split("://", 1)[0] in ("http", "https"):
        return _match_http(url)
    store, pattern = _source_store(ws, source)
    files = store.find(pattern)
    what = _describe_source(source)
    if not files:
        raise DataPathNotFound(
            f"{what} matches no file; check the path (a folder, a file, or a pattern with * and "
            "**) and what the datastore holds"
        )
    by_path = {f.rel: f for f in files}
    out = {}
    for rel, path in rel_paths(pattern, list(by_path)).items():
        f = by_path[path]
        local = store.full(path) if store.is_folder else None
        origin = (
            ("/" + path)
            if "local" in source
            else (f"{url.split('://')[0]}://{path}" if url else path)
        )
        out[rel] = (origin, f.size, f.fingerprint, local)
    return out


def _match_http(url: str) -> dict[str, tuple[str, int, tuple[Any, ...], str | None]]:
    import fsspec

    fs = fsspec.filesystem("http")
    try:
        info = fs.info(url)
    except FileNotFoundError as exc:
        # fsspec says FileNotFoundError for a refused connection too; its cause tells which
        if isinstance(exc.__cause__, OSError | TimeoutError):  # aiohttp's connect errors
            raise DatastoreUnavailable(
                f"the URL {url!r} cannot be reached ({exc.__cause__}); check the address and "
                "that the server is up, then retry"
            ) from None
        raise DataPathNotFound(f"the URL {url!r} matches no file (404)") from None
    except Exception as exc:
        raise DataPathNotFound(
            f"the URL {url!r} cannot be read: {type(exc).__name__}: {exc}"
        ) from None
    name = posixpath.basename(url.split("?", 1)[0].rstrip("/")) or "data"
    tag = info.get("ETag") or info.get("etag") or ""
    return {name: (url, int(info.get("size") or 0), (int(info.get("size") or 0), str(tag)), None)}


def _describe_source(source: Mapping[str, str]) -> str:
    if "datastore" in source:
        return f"the path {source.get('path')!r} on datastore {source['datastore']!r}"
    if "local" in source:
        return f"the local path {source['local']!r}"
    return f"the URL {source.get('url')!r}"


def _from_base(ws: WorkspaceServices, definition: Mapping[str, Any]) -> list[tuple[_Found, str]]:
    """A dataset derived from a saved version (``ds.take(5)`` of a registered one): that
    version's files — fixed, already hashed — with the transforms added since."""
    from ferry.data.catalog import assets

    parent = assets(ws).get_dataset_by_id(str(definition["base"]))
    listing = load_listing(ws, parent)
    found = [
        (_Found(rel, listing.origins[rel], entry.size, None), entry.digest)
        for rel, entry in listing.manifest.files()
    ]
    if definition.get("kind") == "file":
        later = (definition.get("transforms") or [])[int(definition.get("base_transforms") or 0) :]
        found = apply_transforms(found, later)
    return found


# hashing ---------------------------------------------------------------------------------------
def snapshot_dataset(
    ws: WorkspaceServices,
    definition: Mapping[str, Any],
    *,
    run_id: str | None = None,
    keep_remote: bool = False,
    on_progress: Progress | None = None,
) -> tuple[DatasetRecord, Listing]:
    """Fix what ``definition`` holds now as a new (unsaved, unnamed) version; with
    ``keep_remote`` the remote files read for hashing are kept in the blob store too (for a
    caller about to read them)."""
    if definition.get("base"):
        pairs = _from_base(ws, definition)
        found = [f for f, _ in pairs]
        digests = {f.rel: digest for f, digest in pairs}
    else:
        found = list_files(ws, definition)
        digests = {}
    if not found:
        raise DataPathNotFound("the dataset holds no file after its skip/take/split")
    if not digests:
        digests = _hash_all(ws, definition, found, keep_remote, on_progress)
    entries = {f.rel: FileEntry(digests[f.rel], f.size) for f in found}
    origins = {f.rel: f.origin for f in found}
    listing = Listing(Manifest(entries, ws.blobs.algo), origins)
    locator = ws.blobs.put_bytes(listing.document())
    manifest = listing.manifest
    if not ws.blobs.lacking({e.digest: e.size for _, e in manifest.files()}):
        save_manifest(ws.blobs, manifest)
    record = DatasetRecord(
        id=new_dataset_id(),
        kind=str(definition["kind"]),
        definition=dict(definition),
        manifest_id=manifest.snapshot_id,
        files=len(manifest),
        bytes=manifest.total_bytes,
        locator_id=locator,
        run_id=run_id,
    )
    return record, listing


def _cache_key(source: Mapping[str, str]) -> str:
    return json.dumps(dict(source), sort_keys=True)


def _hash_all(
    ws: WorkspaceServices,
    definition: Mapping[str, Any],
    found: Sequence[_Found],
    keep_remote: bool,
    on_progress: Progress | None,
) -> dict[str, str]:
    """Every file's digest: from the fingerprint cache when unchanged, else read (and, for
    files on this machine's disk, stored in the blob store)."""
    sources = definition.get("sources") or []
    caches: dict[int, StatCache] = {}
    fresh: dict[int, dict[str, list[Any]]] = {}
    out: dict[str, str] = {}
    todo: list[_Found] = []
    for f in found:
        cache = caches.get(f.origin.source)
        if cache is None:
            cache = caches[f.origin.source] = StatCache.load(
                Path(ws.cache_dir) / "datasets", _cache_key(sources[f.origin.source]), ws.blobs.algo
            )
            fresh[f.origin.source] = {}
        hit = cache.entries.get(f.origin.path)
        if hit is not None and tuple(hit[:-1]) == tuple(f.origin.fingerprint):
            out[f.rel] = str(hit[-1])
            fresh[f.origin.source][f.origin.path] = hit
        else:
            todo.append(f)
    lock = threading.Lock()
    stores: dict[int, StoreFS] = {}

    def one(f: _Found) -> None:
        if f.local is not None:
            digest = _hash_local(f.local)
        else:
            with lock:
                store = stores.get(f.origin.source)
                if store is None:
                    store = stores[f.origin.source] = _source_store(ws, sources[f.origin.source])[0]
            digest = _read_remote(ws, store, f.origin, None, keep_remote)
        with lock:
            out[f.rel] = digest
            fresh[f.origin.source][f.origin.path] = [*f.origin.fingerprint, digest]
        if on_progress is not None:
            on_progress(f.size)

    with ThreadPoolExecutor(_THREADS) as pool:
        for _ in pool.map(one, todo):
            pass
    local = {out[f.rel]: f for f in found if f.local is not None}
    lacking = ws.blobs.lacking({d: f.size for d, f in local.items()})
    for digest in sorted(lacking):
        try:
            ws.blobs.put_file(Path(local[digest].local or ""), digest)
        except FerryError as exc:
            raise DatasetChanged(
                f"{local[digest].origin.path} changed while the dataset was being saved ({exc}); "
                "try again once nothing writes to it"
            ) from None
    for index, cache in caches.items():
        if fresh[index] != cache.entries:
            cache.save(fresh[index], "", None)
    return out


def _hash_local(path: str) -> str:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        return hash_fd(fd)[0]
    finally:
        os.close(fd)


def _read_remote(
    ws: WorkspaceServices, store: StoreFS, origin: Origin, expected: str | None, keep: bool
) -> str:
    """Stream a remote file, hashing it; with ``keep`` its bytes go into the blob store (only
    when they hash to ``expected``, if given). Returns the digest read."""
    tmp_dir = Path(ws.cache_dir) / "datasets" / "fetch"
    tmp = tmp_dir / f"{os.getpid()}.{threading.get_ident()}.part"
    hasher = new_hasher(ws.blobs.algo)
    if keep:
        tmp_dir.mkdir(parents=True, exist_ok=True)
    try:
        with open_origin(store, origin) as reader, open(tmp, "wb") if keep else _Nowhere() as out:
            while chunk := reader.read(CHUNK):
                hasher.update(chunk)
                out.write(chunk)
        digest = hasher.hexdigest()
        if keep and (expected is None or digest == expected):
            ws.blobs.put_file(tmp, digest)
        return digest
    finally:
        if keep:
            tmp.unlink(missing_ok=True)


class _Nowhere:
    """A writer that keeps nothing (hashing only)."""

    def __enter__(self) -> _Nowhere:
        return self

    def __exit__(self, *args: object) -> None:
        return None

    def write(self, data: bytes) -> int:
        return len(data)


def open_origin(store: StoreFS, origin: Origin) -> BinaryIO:
    """A reader of a file at its origin."""
    if origin.path.split("://", 1)[0] in ("http", "https"):
        import fsspec

        return fsspec.open(origin.path, "rb").open()  # type: ignore[no-any-return]
    if store.spec.kind == "url":
        return store.fs.open(origin.path.split("://", 1)[-1], "rb")  # type: ignore[no-any-return]
    return store.open(origin.path)


# reading a version -------------------------------------------------------------------------------
def load_listing(ws: WorkspaceServices, record: DatasetRecord) -> Listing:
    if not record.locator_id:
        raise ConfigError(f"dataset {record.id} has no listing")
    return Listing.parse(ws.blobs.read_bytes(record.locator_id))


def ensure_local(
    ws: WorkspaceServices, record: DatasetRecord, log: Callable[[str], None] | None = None
) -> Manifest:
    """Every file of the version in the blob store (fetched and verified when missing); the
    manifest stored too. DatasetChanged names a file whose content is no longer the one the
    version holds."""
    listing = load_listing(ws, record)
    manifest = listing.manifest
    sizes = {e.digest: e.size for _, e in manifest.files()}
    lacking = ws.blobs.lacking(sizes)
    if lacking:
        by_digest = {e.digest: rel for rel, e in manifest.files()}
        total = sum(sizes[d] for d in lacking)
        if log is not None:
            log(
                f"ferry: fetching {len(lacking)} file(s), {total} bytes, of dataset {_label(record)}"
            )
        _fetch(ws, record, listing, [(by_digest[d], d) for d in sorted(lacking)])
    save_manifest(ws.blobs, manifest)
    return manifest


def _label(record: DatasetRecord) -> str:
    return f"{record.name}:{record.version}" if record.name else record.id


def _fetch(
    ws: WorkspaceServices, record: DatasetRecord, listing: Listing, wanted: list[tuple[str, str]]
) -> None:
    sources = record.definition.get("sources") or []
    stores: dict[int, StoreFS] = {}
    lock = threading.Lock()

    def one(item: tuple[str, str]) -> None:
        rel, digest = item
        origin = listing.origins[rel]
        if origin.path.startswith("/") and not os.path.exists(origin.path):
            raise DatasetChanged(_changed(record, rel, origin, "it is gone"))
        with lock:
            store = stores.get(origin.source)
            if store is None:
                store = stores[origin.source] = _source_store(ws, sources[origin.source])[0]
        try:
            got = _read_remote(ws, store, origin, digest, keep=True)
        except (DataPathNotFound, FileNotFoundError):
            raise DatasetChanged(_changed(record, rel, origin, "it is gone")) from None
        if got != digest:
            raise DatasetChanged(_changed(record, rel, origin, "its content is not the same"))

    with ThreadPoolExecutor(_THREADS) as pool:
        for _ in pool.map(one, wanted):
            pass


def _changed(record: DatasetRecord, rel: str, origin: Origin, what: str) -> str:
    source = (record.definition.get("sources") or [{}])[origin.source]
    where = f"datastore {source['datastore']!r}" if "datastore" in source else "its source"
    return (
        f"file {rel!r} of dataset {_label(record)} changed since the version was saved: {what} "
        f"at {origin.path!r} on {where}, and this workspace does not keep the version's bytes. "
        "Register a new version to use what is there now"
    )
