"""A ferry server's blob store, with this machine's copies as a cache.

What the server holds is the truth: :meth:`HttpBlobStore.has` and :meth:`~HttpBlobStore.lacking`
ask it (one request for a whole snapshot), and the snapshotter then sends only the blobs it
lacks. Each upload is hashed by the server as it arrives and refused when the bytes do not
match the digest, so a file that changed while it was sent is never stored under the wrong
name. Reads download a blob once into the local store under ``root`` (verified there, like
every local read) and serve it from there afterwards.

Example::

    blobs = HttpBlobStore(connection, Path("~/.ferry/servers/ferry.example/blobs"))
    blobs.lacking({digest: size})          # asks the server
    blobs.put_file(Path("train.py"), digest)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from ferry.errors import SnapshotError
from ferry.snapshot.blobstore.local import LocalBlobStore
from ferry.snapshot.digest import CHUNK, DEFAULT_ALGO, hash_bytes
from ferry.tracking.http import ServerConnection

_API = "/api/v1/blobs"
_BATCH = 20_000


class HttpBlobStore(LocalBlobStore):
    """Blobs kept by a ferry server; ``root`` caches the ones this machine has read."""

    def __init__(self, connection: ServerConnection, root: Path, algo: str = DEFAULT_ALGO) -> None:
        super().__init__(root, algo)
        self.connection = connection

    def __repr__(self) -> str:
        return f"HttpBlobStore({self.connection.url!r}, cache={str(self.root)!r})"

    # what the server holds -------------------------------------------------------------------
    def has(self, digests: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(digests))
        for digest in wanted:
            self._path(digest)  # a malformed digest is refused here, as by a local store
        present: set[str] = set()
        for start in range(0, len(wanted), _BATCH):
            answer = self.connection.call(
                "POST", "/blobs/has", {"digests": wanted[start : start + _BATCH]}
            )
            present.update(answer["present"])
        return present

    def lacking(self, sizes: Mapping[str, int]) -> set[str]:
        items = list(sizes.items())
        for digest, _size in items:
            self._path(digest)
        out: set[str] = set()
        for start in range(0, len(items), _BATCH):
            answer = self.connection.call(
                "POST", "/blobs/lacking", {"sizes": dict(items[start : start + _BATCH])}
            )
            out.update(answer["lacking"])
        return out

    def aside_mark(self) -> str:
        return str(self.connection.call("GET", "/blob-store/aside-mark")["mark"])

    # sending -------------------------------------------------------------------------------
    def put_file(self, path: Path, digest: str) -> bool:
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed below, after the upload
        except OSError as exc:
            raise SnapshotError(f"cannot read {path}: {exc.strerror}") from exc
        with fh:
            return self._send(digest, _chunks(fh))

    def put_bytes(self, data: bytes) -> str:
        digest = hash_bytes(data, self.algo)
        self._send(digest, iter((data,)))
        return digest

    def _send(self, digest: str, body: Iterator[bytes]) -> bool:
        try:
            response = self.connection.request(
                "PUT",
                f"{_API}/{digest}",
                content=body,
                headers={"Content-Type": "application/octet-stream"},
            )
        except SnapshotError as exc:
            raise SnapshotError(
                f"the server refused blob {digest}: {exc} (a file changed while it was sent?)"
            ) from exc
        return bool(response.json().get("new"))

    # reading: through the local cache ----------------------------------------------------------
    def _fetch(self, digest: str) -> None:
        if os.path.exists(self._path(digest)):  # (a malformed digest is refused here)
            return
        folder = self.root / "tmp"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        temp = folder / f"download-{uuid.uuid4().hex}"
        try:
            with self.connection.client.stream("GET", f"{_API}/{digest}") as response:
                if response.status_code >= 400:
                    response.read()
                    raise self.connection._error(response)
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                with os.fdopen(fd, "wb") as out:
                    for chunk in response.iter_bytes(CHUNK):
                        out.write(chunk)
            try:
                super().put_file(temp, digest)  # verifies the bytes against the digest
            except SnapshotError as exc:
                raise SnapshotError(
                    f"blob {digest} from {self.connection.url} did not match its digest; "
                    "it was not kept"
                ) from exc
        finally:
            temp.unlink(missing_ok=True)

    def open(self, digest: str) -> BinaryIO:
        self._fetch(digest)
        return super().open(digest)

    def read_bytes(self, digest: str) -> bytes:
        self._fetch(digest)
        return super().read_bytes(digest)

    def link_or_copy(self, digest: str, dest_path: Path, mode: int) -> None:
        self._fetch(digest)
        super().link_or_copy(digest, dest_path, mode)

    def path(self, digest: str) -> Path:
        self._fetch(digest)
        return super().path(digest)


def _chunks(fh: BinaryIO) -> Iterator[bytes]:
    while chunk := fh.read(CHUNK):
        yield chunk
