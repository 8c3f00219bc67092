"""The bucket blob store on Azure Blob Storage (``az://`` through adlfs) passes the blob store
conformance suite against Azurite on loopback; a missing container is refused with the fix."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from s3_helpers import azure_env, azurite, new_container

from ferry.errors import ConfigError
from ferry.snapshot import BlobStore
from ferry.snapshot.blobstore.remote import RemoteBlobStore

_spec = importlib.util.spec_from_file_location(
    "blobstore_contract", Path(__file__).parents[1] / "snapshot" / "blobstore_contract.py"
)
assert _spec is not None and _spec.loader is not None
_contract = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("blobstore_contract", _contract)
_spec.loader.exec_module(_contract)


@pytest.fixture(scope="module")
def az() -> Iterator[Any]:
    yield from azurite()


@pytest.fixture
def container_url(az: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in azure_env(az).items():
        monkeypatch.setenv(name, value)
    return f"az://{new_container(az)}/team blobs"


class TestAzureBlobStore(_contract.BlobStoreContract):  # type: ignore[misc,name-defined]
    @pytest.fixture
    def blob_store(self, container_url: str, tmp_path: Path) -> BlobStore:
        store = RemoteBlobStore(container_url, tmp_path / "cache")
        store.probe()
        return store

    def damage(self, store: BlobStore, digest: str, data: bytes) -> None:
        assert isinstance(store, RemoteBlobStore)
        store.fs.pipe_file(store._key(digest), data)


def test_a_missing_container_is_a_config_error_naming_the_fix(
    container_url: str, tmp_path: Path
) -> None:
    store = RemoteBlobStore("az://no-such-container/blobs", tmp_path / "c")
    with pytest.raises(ConfigError, match="az storage container create --name no-such-container"):
        store.probe()
