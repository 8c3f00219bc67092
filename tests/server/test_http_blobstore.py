"""The server's blob store through HTTP passes the blob store conformance suite.

The client asks by hash and sends only what is missing; the server verifies every upload on
arrival and every blob before it sends it (a corrupt one is set aside there, as locally).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from ferry.errors import SnapshotError
from ferry.snapshot import BlobStore
from ferry.snapshot.blobstore.http import HttpBlobStore
from ferry.snapshot.digest import hash_bytes
from ferry.tracking.http import ServerConnection

_spec = importlib.util.spec_from_file_location(
    "blobstore_contract", Path(__file__).parents[1] / "snapshot" / "blobstore_contract.py"
)
assert _spec is not None and _spec.loader is not None
_contract = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("blobstore_contract", _contract)
_spec.loader.exec_module(_contract)


class TestHttpBlobStore(_contract.BlobStoreContract):  # type: ignore[misc,name-defined]
    @pytest.fixture
    def blob_store(self, thread_server: Any, tmp_path: Path) -> BlobStore:
        self.server_blobs = thread_server.services.blobs
        connection = ServerConnection(thread_server.url, thread_server.token)
        return HttpBlobStore(connection, tmp_path / "client cache")

    def damage(self, store: BlobStore, digest: str, data: bytes) -> None:
        path = self.server_blobs.path(digest)
        path.chmod(0o644)
        path.write_bytes(data)


def test_only_lacking_blobs_are_sent(thread_server: Any, tmp_path: Path) -> None:
    """A second snapshot of a folder sends nothing; a changed file sends one blob."""
    from ferry.snapshot import take_snapshot

    store = HttpBlobStore(ServerConnection(thread_server.url, thread_server.token), tmp_path / "c")
    src = tmp_path / "src"
    src.mkdir()
    for i in range(30):
        (src / f"f{i}.py").write_text(f"print({i})\n" * (i + 1))
    first = take_snapshot(src, store, tmp_path / "stat1")
    assert first.stats.new_files == 30
    again = take_snapshot(src, store, tmp_path / "stat2")  # a fresh stat cache: asks by hash
    assert again.stats.new_files == 0 and again.snapshot_id == first.snapshot_id
    (src / "f3.py").write_text("print('changed')\n")
    third = take_snapshot(src, store, tmp_path / "stat2")
    assert third.stats.new_files == 1


def test_an_upload_that_does_not_match_its_digest_stores_nothing(
    thread_server: Any, tmp_path: Path
) -> None:
    import httpx

    digest = hash_bytes(b"what was hashed", "sha256")
    response = httpx.put(
        f"{thread_server.url}/api/v1/blobs/{digest}",
        content=b"what arrived instead",
        headers={"Authorization": f"Bearer {thread_server.token}"},
    )
    assert response.status_code == 422
    assert "do not hash to" in response.json()["error"]["message"]
    assert not thread_server.services.blobs.path(digest).exists()
    store = HttpBlobStore(ServerConnection(thread_server.url, thread_server.token), tmp_path / "c")
    assert store.has([digest]) == set()
    with pytest.raises(SnapshotError, match="missing"):
        store.read_bytes(digest)
