"""The bucket blob store on Azure Blob Storage (``az://`` through adlfs) passes the blob store
conformance suite against Azurite on loopback; a missing container is refused with the fix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from s3_helpers import BucketBlobStoreContract, azure_env, azurite, new_container

from ferry.errors import ConfigError
from ferry.snapshot.blobstore.remote import RemoteBlobStore


@pytest.fixture(scope="module")
def az() -> Iterator[Any]:
    yield from azurite()


@pytest.fixture
def container_url(az: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in azure_env(az).items():
        monkeypatch.setenv(name, value)
    return f"az://{new_container(az)}/team blobs"


class TestAzureBlobStore(BucketBlobStoreContract):
    @pytest.fixture
    def store_url(self, container_url: str) -> str:
        return container_url


def test_a_missing_container_is_a_config_error_naming_the_fix(
    container_url: str, tmp_path: Path
) -> None:
    store = RemoteBlobStore("az://no-such-container/blobs", tmp_path / "c")
    with pytest.raises(ConfigError, match="az storage container create --name no-such-container"):
        store.probe()
