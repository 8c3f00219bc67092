"""Fixtures of the data tests: real S3 and Azure Blob services on loopback (started once per
session, stopped at its end; missing ones FAIL with how to install them), datastores on them,
and small helpers to make files and submit runs."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "targets"))

from helpers import write_files
from services import Azurite, S3Server, ServiceUnavailable, azurite, s3_server


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    try:
        with s3_server() as server:
            yield server
    except ServiceUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def azure() -> Iterator[Azurite]:
    try:
        with azurite() as server:
            yield server
    except ServiceUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def s3_store(workspace: Any, s3: S3Server) -> Any:
    """A datastore on a new bucket of the S3 server."""
    from ferry.data import Datastore

    bucket = f"b-{uuid.uuid4().hex[:12]}"
    return Datastore.register_s3(
        workspace, "rawdata", bucket_name=bucket, endpoint=s3.endpoint,
        access_key_id=s3.access_key_id, secret_access_key=s3.secret_access_key,
        create_if_not_exists=True,
    )  # fmt: skip


@pytest.fixture
def azure_store(workspace: Any, azure: Azurite) -> Any:
    """A datastore on a new container of the storage emulator."""
    from ferry.data import Datastore

    return Datastore.register_azure_blob_container(
        workspace, "blobs", container_name=f"c{uuid.uuid4().hex[:12]}",
        account_name=azure.account_name, account_key=azure.account_key,
        endpoint=azure.endpoint, protocol="http", create_if_not_exists=True,
    )  # fmt: skip


@pytest.fixture
def sample(awkward_dir: Path) -> Path:
    """A small folder in an awkward path: csv files, a nested file, a name with a space."""
    return write_files(
        awkward_dir / "sample data",
        {
            "a.csv": "x,y\n1,2\n3,4\n",
            "b.csv": "x,y\n5,6\n",
            "nested/deep/c.txt": "hello",
            "with space é.txt": "unicode",
        },
    )
