"""Storage services for the bucket blob-store tests — moto's S3 server and Azurite, the ones the
data tests start — the environment a ferry process needs to reach them (credentials and
endpoints only in the backends' standard variables), and the blob store conformance suite run
over a bucket of either (:class:`BucketBlobStoreContract`)."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ferry.snapshot import BlobStore
from ferry.snapshot.blobstore.remote import RemoteBlobStore


def _load(name: str, path: Path) -> Any:
    """A helper module of another test folder (not on ``sys.path`` when this one runs)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


services = _load("data_services", Path(__file__).parents[1] / "data" / "services.py")
_contract = _load(
    "blobstore_contract", Path(__file__).parents[1] / "snapshot" / "blobstore_contract.py"
)


class BucketBlobStoreContract(_contract.BlobStoreContract):  # type: ignore[misc,name-defined]
    """The conformance suite over a bucket: a subclass (``Test…``) gives the ``store_url``
    fixture (``s3://bucket/prefix``, ``az://container/prefix``) with the backend's variables
    set; the store is probed first, as a server does before it serves."""

    @pytest.fixture
    def blob_store(self, store_url: str, tmp_path: Path) -> BlobStore:
        store = RemoteBlobStore(store_url, tmp_path / "cache")
        store.probe()
        return store

    def damage(self, store: BlobStore, digest: str, data: bytes) -> None:
        assert isinstance(store, RemoteBlobStore)
        store.fs.pipe_file(store._key(digest), data)


def moto_s3() -> Iterator[Any]:
    """moto's S3 server on loopback; FAILS (never skips) when moto cannot be started."""
    try:
        with services.s3_server() as s3:
            yield s3
    except services.ServiceUnavailable as exc:
        pytest.fail(f"the S3 blob store tests need moto's server: {exc}", pytrace=False)


def s3_env(s3: Any) -> dict[str, str]:
    """What a ferry process needs to use the bucket: AWS's standard variables only."""
    return {
        "AWS_ENDPOINT_URL": s3.endpoint,
        "AWS_ACCESS_KEY_ID": s3.access_key_id,
        "AWS_SECRET_ACCESS_KEY": s3.secret_access_key,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/ferry-tests",
        "AWS_CONFIG_FILE": "/nonexistent/ferry-tests",
    }


def new_bucket(s3: Any) -> str:
    return str(s3.make_bucket(f"ferry-{uuid.uuid4().hex[:12]}"))


def azurite() -> Iterator[Any]:
    """Azurite's blob service on loopback; FAILS (never skips) when it is not installed."""
    try:
        with services.azurite() as az:
            yield az
    except services.ServiceUnavailable as exc:
        pytest.fail(f"the Azure blob store tests need Azurite: {exc}", pytrace=False)


def azure_env(az: Any) -> dict[str, str]:
    """The standard variable adlfs reads: the emulator's (public) development account."""
    return {
        "AZURE_STORAGE_CONNECTION_STRING": (
            f"DefaultEndpointsProtocol=http;AccountName={az.account_name};"
            f"AccountKey={az.account_key};BlobEndpoint={az.endpoint};"
        )
    }


def new_container(az: Any) -> str:
    from azure.storage.blob import BlobServiceClient

    name = f"ferry-{uuid.uuid4().hex[:12]}"
    client = BlobServiceClient.from_connection_string(
        azure_env(az)["AZURE_STORAGE_CONNECTION_STRING"]
    )
    client.create_container(name)
    return name
