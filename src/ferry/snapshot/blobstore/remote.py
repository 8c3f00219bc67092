"""A blob store in a bucket (``s3://bucket/prefix``, ``az://``, ``gs://`` …), shared by servers.

The bucket is the truth, laid out like a local store: ``<prefix>/ab/cdef…`` one object per blob,
``<prefix>/corrupt/<digest>.<UTC time>`` for blobs set aside, ``<prefix>/tmp/`` for large
uploads in flight. Several server processes, on one machine or many, can share one bucket: a
blob's name is its content, so two writers of one blob write the same bytes.

* **Uploads are verified, then published whole.** A blob up to :data:`SMALL` bytes is read,
  hashed and sent in one PUT (an object store shows an object only once its upload completed).
  A larger one is hashed as it streams to ``tmp/`` and copied to its name on the server side
  only if it matched; the temporary object is removed either way (a lifecycle rule on
  ``tmp/`` removes those a killed writer left).
* **Asking is batched.** :meth:`~RemoteBlobStore.has` and :meth:`~RemoteBlobStore.lacking`
  list the two-letter folders the asked digests fall in (one request per 1,000 objects, in
  parallel) rather than asking for each blob; a handful of digests are asked one by one.
* **Reads go through a local cache** (``cache``, an ordinary :class:`LocalBlobStore`): a blob is
  downloaded once, hashed on the way, and kept only if it matches; one that does not is set
  aside in the bucket, so ``has`` stops reporting it and the next snapshot stores it again.
* **Credentials come only from the environment** and the backend's standard configuration
  (``AWS_ACCESS_KEY_ID`` …, ``AWS_PROFILE``, ``~/.aws``, an instance role, ``AWS_ENDPOINT_URL``
  for S3-compatible services; ``FSSPEC_<PROTOCOL>_<OPTION>`` for any fsspec option). A URL
  carrying a secret is refused, and every message is scrubbed of the secrets in the
  environment.

Example::

    blobs = RemoteBlobStore("s3://team-ferry/blobs", Path("/srv/ferry/blobs"))
    blobs.probe()                          # at server start: reachable, bucket, credentials
    digest = blobs.put_bytes(b"hi")
    assert blobs.read_bytes(digest) == b"hi"
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from ferry.agent.files import write_all
from ferry.errors import ConfigError, FerryError, SnapshotError
from ferry.snapshot.blobstore.bucket import (
    check_url,
    file_system,
    translate,
)
from ferry.snapshot.blobstore.local import LocalBlobStore
from ferry.snapshot.digest import CHUNK, DEFAULT_ALGO, hash_bytes, is_digest, new_hasher
from ferry.snapshot.errors import CorruptBlobError, MissingBlobError

#: blobs up to this size are uploaded in one request, from memory; larger ones through tmp/
SMALL = 16 * 1024 * 1024
#: up to this many digests are asked one by one; more, by listing their folders
FEW = 8
_THREADS = 16
_REPORTED_MAX = 1_000_000
#: bytes asked for at once when downloading a blob (one ranged GET each)
_READ_BLOCK = 8 * CHUNK


def is_remote(location: str) -> bool:
    """Whether ``location`` names a bucket (``s3://…``) rather than a folder (or ``file://``)."""
    return "://" in location and not location.startswith("file://")


def open_blob_store(location: str, cache: Path, algo: str = DEFAULT_ALGO) -> LocalBlobStore:
    """The blob store at ``location``: a folder (``PATH`` or ``file://PATH``), or a bucket
    whose blobs this machine caches in ``cache``."""
    if is_remote(location):
        return RemoteBlobStore(location, cache, algo)
    return LocalBlobStore(Path(location.removeprefix("file://")).expanduser(), algo)


class RemoteBlobStore(LocalBlobStore):
    """Blobs in a bucket (any fsspec URL); ``cache`` keeps the ones this machine has read."""

    def __init__(self, url: str, cache: Path, algo: str = DEFAULT_ALGO, *, fs: Any = None) -> None:
        super().__init__(cache, algo)
        self.url = check_url(url)
        self.protocol = urlsplit(self.url).scheme
        self._fs = fs
        self._prefix = ""
        #: digest -> size (None: any) of blobs :meth:`lacking` or :meth:`has` just reported
        #: absent: the puts that follow send them without asking again (a miss costs s3fs
        #: two requests)
        self._reported: dict[str, int | None] = {}

    def __repr__(self) -> str:
        return f"RemoteBlobStore({self.url!r}, cache={str(self.root)!r})"

    # the bucket ------------------------------------------------------------------------------
    @property
    def fs(self) -> Any:
        """The fsspec file system (made on first use: the constructor stays cheap)."""
        if self._fs is None:
            self._fs, self._prefix = file_system(self.url, self.protocol)
        elif not self._prefix:
            self._prefix = self._fs._strip_protocol(self.url).rstrip("/")
        return self._fs

    def probe(self) -> None:
        """Check, before a server listens, that the bucket is there and these credentials may
        write to it: one small object written, read back and removed. Raises ConfigError
        (missing bucket or credentials, refused) or BlobStoreUnavailable (unreachable)."""
        fs = self.fs
        key = f"{self._prefix}/tmp/probe-{uuid.uuid4().hex}"
        with self._errors("checking the bucket"):
            fs.pipe_file(key, b"ferry")
            if fs.cat_file(key) != b"ferry":
                raise ConfigError(f"{self.url}: an object written could not be read back")
            fs.rm_file(key)

    def _key(self, digest: str) -> str:
        if not is_digest(digest, self.algo):
            raise SnapshotError(f"not a valid {self.algo} digest: {digest!r}")
        self.fs  # noqa: B018 - sets the prefix
        return f"{self._prefix}/{digest[:2]}/{digest[2:]}"

    def _where(self, key: str) -> str:
        return f"{self.protocol}://{key}"

    # asking ----------------------------------------------------------------------------------
    def has(self, digests: Iterable[str]) -> set[str]:
        wanted = list(digests)
        present = set(self._sizes(wanted))
        self._remember({d: None for d in wanted if d not in present})
        return present

    def lacking(self, sizes: Mapping[str, int]) -> set[str]:
        found = self._sizes(sizes)
        out = set()
        for digest, size in sizes.items():
            stored = found.get(digest)
            if stored is not None and stored != size:
                self._set_aside_remote(digest)  # truncated: storing it again heals it
                stored = None
            if stored is None:
                out.add(digest)
        self._remember({d: sizes[d] for d in out})
        return out

    def _remember(self, absent: Mapping[str, int | None]) -> None:
        if len(self._reported) > _REPORTED_MAX:
            self._reported.clear()
        self._reported.update(absent)

    def aside_mark(self) -> str:
        with self._errors("listing the blobs set aside"):
            try:
                names = self.fs.ls(f"{self._prefix}/corrupt", detail=False)
            except FileNotFoundError:
                return ""
        return f"{len(names)}:{max(names, default='')}"

    def _sizes(self, digests: Iterable[str]) -> dict[str, int]:
        """digest -> stored size, for those of ``digests`` the bucket holds."""
        wanted = {d: self._key(d) for d in dict.fromkeys(digests)}
        if not wanted:
            return {}
        if len(wanted) <= FEW:
            found = self._map(self._size_of, list(wanted.items()))
            return {d: size for (d, size) in found if size is not None}
        folders: dict[str, set[str]] = {}
        for digest in wanted:
            folders.setdefault(digest[:2], set()).add(digest)
        out: dict[str, int] = {}
        for listed in self._map(self._list_folder, list(folders.items())):
            out.update(listed)
        return out

    def _size_of(self, item: tuple[str, str]) -> tuple[str, int | None]:
        digest, key = item
        with self._errors(f"looking for blob {digest}"):
            try:
                info = self.fs.info(key)
            except FileNotFoundError:
                return digest, None
        return digest, int(info["size"]) if info.get("type", "file") == "file" else None

    def _list_folder(self, item: tuple[str, set[str]]) -> dict[str, int]:
        folder, digests = item
        with self._errors("listing blobs"):
            try:
                entries = self.fs.ls(f"{self._prefix}/{folder}", detail=True)
            except FileNotFoundError:
                return {}
        out = {}
        for entry in entries:
            digest = folder + entry["name"].rstrip("/").rsplit("/", 1)[-1]
            if digest in digests and entry.get("type", "file") == "file":
                out[digest] = int(entry["size"])
        return out

    def _map(self, func: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        if len(items) == 1:
            return [func(items[0])]
        with ThreadPoolExecutor(min(_THREADS, len(items))) as pool:
            return list(pool.map(func, items))

    # storing ---------------------------------------------------------------------------------
    def put_bytes(self, data: bytes) -> str:
        digest = hash_bytes(data, self.algo)
        if self._needs(digest, len(data)):
            with self._errors(f"storing blob {digest}"):
                self.fs.pipe_file(self._key(digest), bytes(data))
        return digest

    def put_file(self, path: Path, digest: str) -> bool:
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise SnapshotError(f"cannot read {path}: {exc.strerror}") from exc
        with fh:
            size = os.fstat(fh.fileno()).st_size
            if not self._needs(digest, size):
                return False
            if size <= SMALL:
                data = fh.read()
                if hash_bytes(data, self.algo) != digest:
                    raise _changed(path, digest)
                with self._errors(f"storing blob {digest}"):
                    self.fs.pipe_file(self._key(digest), data)
            else:
                self._put_large(fh, path, digest)
        return True

    def _needs(self, digest: str, size: int) -> bool:
        """Whether the blob must be sent: absent, or stored with another size (set aside).
        One just reported lacking is sent without asking: if another writer stored it since,
        the same bytes are written again."""
        if digest in self._reported and self._reported.pop(digest, -1) in (None, size):
            return True
        stored = self._sizes([digest]).get(digest)
        if stored == size:
            return False
        if stored is not None:
            self._set_aside_remote(digest)
        return True

    def _put_large(self, fh: BinaryIO, path: Path, digest: str) -> None:
        """Stream to ``tmp/`` hashing, then copy to the blob's name if the digest matched."""
        temp = f"{self._prefix}/tmp/{uuid.uuid4().hex}"
        hasher = new_hasher(self.algo)
        try:
            with self._errors(f"storing blob {digest}"):
                with self.fs.open(temp, "wb") as out:
                    while chunk := fh.read(CHUNK):
                        hasher.update(chunk)
                        out.write(chunk)
                if hasher.hexdigest() != digest:
                    raise _changed(path, digest)
                self.fs.copy(temp, self._key(digest))
        finally:
            with contextlib.suppress(Exception):
                self.fs.rm_file(temp)

    # reading: through the local cache --------------------------------------------------------
    def _fetch(self, digest: str) -> None:
        """Download the blob into the cache, hashing it on the way; a blob that does not match
        is set aside in the bucket and not kept."""
        final = self._path(digest)  # (a malformed digest is refused here)
        if os.path.exists(final):
            return
        key = self._key(digest)
        hasher = new_hasher(self.algo)

        def download(fd: int) -> None:
            with self._errors(f"reading blob {digest}"):
                try:
                    reader = self.fs.open(key, "rb", block_size=_READ_BLOCK)
                except FileNotFoundError:
                    raise MissingBlobError(digest, self.url) from None
                with reader:
                    while chunk := reader.read(CHUNK):
                        hasher.update(chunk)
                        write_all(fd, chunk)
            if hasher.hexdigest() != digest:
                raise CorruptBlobError(digest, self._where(key), self._set_aside_remote(digest))

        self._write_blob(final, download)

    def open(self, digest: str) -> BinaryIO:
        self._fetch(digest)
        return super().open(digest)

    def read_bytes(self, digest: str) -> bytes:
        self._fetch(digest)
        try:
            return super().read_bytes(digest)
        except CorruptBlobError:  # the cached copy (set aside now): the bucket's may be intact
            self._fetch(digest)
            return super().read_bytes(digest)

    def link_or_copy(self, digest: str, dest_path: Path, mode: int) -> None:
        self._fetch(digest)
        try:
            super().link_or_copy(digest, dest_path, mode)
        except CorruptBlobError:
            self._fetch(digest)
            super().link_or_copy(digest, dest_path, mode)

    def path(self, digest: str) -> Path:
        """The blob's file in the cache (downloaded first if it is not there)."""
        self._fetch(digest)
        return super().path(digest)

    # setting aside and errors -----------------------------------------------------------------
    def _set_aside_remote(self, digest: str) -> str | None:
        """Move the blob to ``corrupt/`` in the bucket; where it went, or None if it could not
        be moved. (A writer storing the intact content at the same moment may lose it to the
        removal: ``has`` then says it is missing, and the next snapshot stores it again.)"""
        key = self._key(digest)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        aside = f"{self._prefix}/corrupt/{digest}.{stamp}.{time.time_ns() % 1_000_000_000:09d}Z"
        try:
            self.fs.copy(key, aside)
            self.fs.rm_file(key)
        except FileNotFoundError:
            return None  # another reader set it aside first
        except Exception:
            return None
        return self._where(aside)

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Translate the backend's errors met while ``doing``; no secret reaches a message."""
        try:
            yield
        except FerryError:
            raise
        except Exception as exc:
            raise translate(exc, self.url, self.protocol, doing) from None


def _changed(path: Path, digest: str) -> SnapshotError:
    return SnapshotError(f"{path} changed while it was being stored (expected {digest}); retry")
