"""A content-addressed cache on a host or node, and a run's working copy made from it.

Blobs live in ``<root>/blobs/ab/cdef…`` (an SSH client uploads missing ones by SFTP to a
temporary name and renames them in place; Ray sends them to the node agent). A snapshot's manifest is itself a blob, so an
unchanged tree costs the client one request naming its snapshot id: the agent reads the manifest
from the cache, finds nothing missing and copies the tree into the run folder, verifying every
blob against its digest while copying (a corrupt blob is deleted and reported as missing, so the
client sends it again).

Safety rules, the same wherever a tree is materialised (``ferry.snapshot`` applies them too):
relative paths only (:func:`check_path`), no entry under another file, folders checked to resolve
inside the destination, files created exclusively without following links, links created last and
only when they stay inside the tree (:func:`link_escapes`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from typing import Any, Dict, Optional

from .files import write_all

CHUNK = 1 << 20
PARALLEL_BYTES = 32 << 20  # below this, copying is bound by file creation: threads do not help
_HEX = frozenset("0123456789abcdef")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW


def new_hasher(algo: str) -> Any:
    import hashlib

    if algo == "sha256":
        return hashlib.sha256()
    if algo == "blake2b":
        return hashlib.blake2b(digest_size=32)
    raise ValueError(f"unsupported digest algorithm {algo!r}")


def check_digest(digest: object) -> str:
    if not isinstance(digest, str) or len(digest) != 64 or not set(digest) <= _HEX:
        raise ValueError(f"not a digest: {digest!r}")
    return digest


def check_name(name: object) -> str:
    """A single path component we create ourselves (run ids, hashes)."""
    if not isinstance(name, str) or not name or "/" in name or "\0" in name or name in (".", ".."):
        raise ValueError(f"not a valid name: {name!r}")
    return name


def check_path(path: object) -> str:
    if not isinstance(path, str) or not path or path.startswith("/") or "\0" in path:
        raise ValueError(f"unsafe manifest path {path!r}")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise ValueError(f"unsafe manifest path {path!r}")
    return path


def link_escapes(path: str, target: str) -> bool:
    """True if a link at ``path`` (relative to the tree) pointing at ``target`` may resolve
    outside the tree: absolute, or more ``..`` than ``path`` has parents, or ``..`` after a name
    (which a link inside the tree could turn into an escape)."""
    if not target or target.startswith("/") or "\0" in target:
        return True
    parts = [p for p in target.split("/") if p not in ("", ".")]
    ups = 0
    while ups < len(parts) and parts[ups] == "..":
        ups += 1
    return ".." in parts[ups:] or ups > path.count("/")


class Store:
    """The work folder: blobs, run folders."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._umask = 0o022

    def blob(self, digest: str) -> str:
        return os.path.join(self.root, "blobs", digest[:2], digest[2:])

    def run_dir(self, run_id: object) -> str:
        return os.path.join(self.root, "runs", check_name(run_id))

    def manifest(self, snapshot_id: str) -> dict[str, Any] | None:
        """The manifest stored under ``snapshot_id``, or None when absent (or corrupt: removed)."""
        path = self.blob(check_digest(snapshot_id))
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError:
            return None
        try:
            manifest = json.loads(data)
            hasher = new_hasher(manifest["algo"])
        except (ValueError, KeyError, TypeError):
            manifest, hasher = None, new_hasher("sha256")
        hasher.update(data)
        if manifest is None or hasher.hexdigest() != snapshot_id:
            os.unlink(path)
            return None
        return dict(manifest)

    def missing(self, digests: Iterable[str]) -> list[str]:
        """Digests not in the cache; their shard folders are created for the uploads."""
        exists = os.path.exists
        out = [d for d in sorted(set(digests)) if not exists(self.blob(check_digest(d)))]
        for digest in out:
            os.makedirs(os.path.dirname(self.blob(digest)), exist_ok=True)
        return out

    def unpack(self, name: str, algo: str) -> list[str]:
        """Store the blobs of the pack ``tmp/<name>`` (verified); returns digests that failed."""
        pack = os.path.join(self.root, "tmp", check_name(name))
        bad = []
        with open(pack, "rb") as fh:
            while True:
                header = fh.read(72)
                if len(header) < 72:
                    break
                digest = check_digest(header[:64].decode("ascii"))
                data = fh.read(int.from_bytes(header[64:], "big"))
                hasher = new_hasher(algo)
                hasher.update(data)
                if hasher.hexdigest() != digest:
                    bad.append(digest)
                    continue
                final = self.blob(digest)
                tmp = f"{final}.{os.getpid()}.tmp"
                with open(tmp, "wb") as out:
                    out.write(data)
                os.replace(tmp, final)
        os.unlink(pack)
        return bad

    def put(self, digest: str, data: bytes, offset: int, size: int, algo: str) -> bool:
        """Write ``data`` at ``offset`` of the blob ``digest`` (``size`` bytes in all); once the
        last piece is there, verify it and publish it. True when the blob is complete; a blob
        that arrived corrupt is dropped (ValueError: send it again)."""
        final = self.blob(check_digest(digest))
        part = os.path.join(self.root, "tmp", "%s.%d.part" % (digest, os.getpid()))
        os.makedirs(os.path.dirname(part), exist_ok=True)
        with open(part, "r+b" if offset else "wb") as fh:
            fh.seek(offset)
            fh.write(data)
        if offset + len(data) < size:
            return False
        hasher = new_hasher(algo)
        with open(part, "rb") as fh:
            for block in iter(lambda: fh.read(CHUNK), b""):
                hasher.update(block)
        if hasher.hexdigest() != digest:
            os.unlink(part)
            raise ValueError("blob %s arrived corrupt; it will be sent again" % digest)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.chmod(part, 0o444)
        os.replace(part, final)
        return True

    def materialize(self, manifest: dict[str, Any], dest: str) -> dict[str, Any]:
        """Copy the manifest's tree into ``dest`` (replaced); reports blobs missing or corrupt."""
        if manifest.get("version") != 1:
            raise ValueError(f"unsupported manifest version {manifest.get('version')!r}")
        algo = str(manifest["algo"])
        entries: dict[str, dict[str, Any]] = manifest["entries"]
        for path in entries:
            check_path(path)
            parent = path.rpartition("/")[0]
            while parent:
                if parent in entries:
                    raise ValueError(f"manifest path {path!r} lies under the file {parent!r}")
                parent = parent.rpartition("/")[0]
        if os.path.lexists(dest):
            shutil.rmtree(dest)
        os.makedirs(dest)
        root = os.path.realpath(dest)
        made = {root}
        jobs = [
            (self._parent(root, path, made), path, entry)
            for path, entry in entries.items()
            if "digest" in entry
        ]
        self._umask = os.umask(0o022)
        os.umask(self._umask)
        if sum(int(job[2].get("size", 0)) for job in jobs) > PARALLEL_BYTES:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(4) as pool:  # big blobs: hashing releases the GIL
                results = list(pool.map(lambda job: self._copy(job, algo), jobs))
        else:
            results = [self._copy(job, algo) for job in jobs]
        bad = sorted({digest for digest in results if digest})
        warnings = []
        for path, entry in entries.items():
            if "link" not in entry:
                continue
            if link_escapes(path, entry["link"]):
                warnings.append(
                    f"not recreating link {path!r} -> {entry['link']!r}: it points outside the tree"
                )
                continue
            folder = self._parent(root, path, made)
            os.symlink(entry["link"], os.path.join(folder, path.rpartition("/")[2]))
        if bad:
            shutil.rmtree(dest, ignore_errors=True)
        return {"missing": bad, "files": len(jobs), "warnings": warnings}

    def dataset(self, manifest: Dict[str, Any], manifest_id: str) -> Dict[str, Any]:
        """A read-only copy of a dataset version shared by every run here,
        ``<root>/data/<manifest id>`` (made once, published by rename)."""
        final = os.path.join(self.root, "data", check_digest(manifest_id))
        if os.path.isdir(final):
            return {"path": final, "missing": [], "warnings": [], "files": None}
        tmp = os.path.join(self.root, "tmp", "data-%s.%d" % (manifest_id, os.getpid()))
        result = self.materialize(manifest, tmp)
        if result["missing"]:
            return result
        folders = []
        for folder, _dirs, files in os.walk(tmp):
            folders.append(folder)
            for name in files:
                path = os.path.join(folder, name)
                if not os.path.islink(path):
                    os.chmod(path, 0o444)
        for folder in reversed(folders):  # nothing can be added to a shared copy either
            os.chmod(folder, 0o555)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        try:
            os.rename(tmp, final)
        except OSError:
            if not os.path.isdir(final):
                raise
            remove_tree(tmp)  # another run published it first
        result["path"] = final
        return result

    @staticmethod
    def _parent(root: str, path: str, made: set[str]) -> str:
        parent = path.rpartition("/")[0]
        folder = root + "/" + parent if parent else root
        if folder not in made:
            os.makedirs(folder, exist_ok=True)
            if os.path.realpath(folder) != folder:
                raise ValueError(f"{parent!r} does not resolve inside the run folder")
            made.add(folder)
        return folder

    def _copy(self, job: tuple[str, str, dict[str, Any]], algo: str) -> str | None:
        """Copy one blob while hashing it; returns its digest when missing or corrupt.

        Files are created with their final mode (no chmod unless the umask is unusual), and a
        small blob is read with one call: on a busy disk, creating files is what costs.
        """
        folder, path, entry = job
        digest = check_digest(entry["digest"])
        size = int(entry.get("size", 0))
        blob = self.blob(digest)
        try:
            src = os.open(blob, os.O_RDONLY | _NOFOLLOW)
        except FileNotFoundError:
            return digest
        hasher = new_hasher(algo)
        try:
            data = os.read(src, min(size, CHUNK)) if size <= CHUNK else b""
            if size <= CHUNK:
                hasher.update(data)
                if hasher.hexdigest() != digest:
                    return self._corrupt(blob, digest)
            mode = int(entry["mode"]) & 0o777
            dst = os.open(os.path.join(folder, path.rpartition("/")[2]), _CREATE, mode)
            try:
                if mode & self._umask:  # the umask took bits the manifest wants
                    os.fchmod(dst, mode)
                if size <= CHUNK:
                    write_all(dst, data)
                else:
                    while True:
                        chunk = os.read(src, CHUNK)
                        if not chunk:
                            break
                        hasher.update(chunk)
                        write_all(dst, chunk)
            finally:
                os.close(dst)
        finally:
            os.close(src)
        if size > CHUNK and hasher.hexdigest() != digest:
            return self._corrupt(blob, digest)
        return None

    @staticmethod
    def _corrupt(blob: str, digest: str) -> str:
        try:
            os.unlink(blob)  # the client sends it again
        except OSError:
            pass
        return digest


def remove_tree(path: str) -> None:
    """Remove a folder, read-only ones (a shared dataset copy) included."""
    for folder, dirs, _ in os.walk(path):
        for name in dirs:
            try:
                os.chmod(os.path.join(folder, name), 0o700)
            except OSError:
                pass
    try:
        os.chmod(path, 0o700)
    except OSError:
        pass
    shutil.rmtree(path, ignore_errors=True)


def free_path(path: str) -> None:
    """Make way for a run's dataset folder: a link or an empty folder goes; anything else is
    someone's data and is refused."""
    if os.path.islink(path):
        os.unlink(path)
    elif os.path.isdir(path):
        if os.listdir(path):
            raise RuntimeError(
                "%s exists and is not empty; give the dataset a path_on_compute that is free" % path
            )
        os.rmdir(path)
    elif os.path.exists(path):
        raise RuntimeError("%s exists and is not a folder; choose another path_on_compute" % path)


def make_empty(paths: Iterable[str]) -> None:
    """Empty folders for a run's outputs (one left by an earlier run is refused)."""
    for path in paths:
        free_path(str(path))
        os.makedirs(str(path))


def place_dataset(
    store: Store, manifest_id: str, mechanism: str, dest: Optional[str]
) -> Dict[str, Any]:
    """A run's input dataset on this machine: the blobs still missing, else where it is — the
    shared read-only copy (``mount``/``direct``, linked from ``dest`` when given) or a
    writable copy at ``dest`` (``download``)."""
    manifest = store.manifest(manifest_id)
    if manifest is None:
        return {"missing": store.missing([manifest_id])}
    entries = manifest["entries"].values()
    missing = store.missing(e["digest"] for e in entries if "digest" in e)
    if missing:
        return {"missing": missing}
    if mechanism == "download":
        target = str(dest)
        free_path(target)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        result = store.materialize(manifest, target)
        result["path"] = target
        return result
    result = store.dataset(manifest, manifest_id)
    if dest and not result["missing"]:
        free_path(str(dest))
        os.makedirs(os.path.dirname(str(dest)), exist_ok=True)
        os.symlink(result["path"], str(dest))
        result["path"] = str(dest)
    return result
