"""Storage services for the bucket blob-store tests — moto's S3 server and Azurite, the ones the
data tests start — and the environment a ferry process needs to reach them: credentials and
endpoints only in the backends' standard variables."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_spec = importlib.util.spec_from_file_location(
    "data_services", Path(__file__).parents[1] / "data" / "services.py"
)
assert _spec is not None and _spec.loader is not None
services = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("data_services", services)
_spec.loader.exec_module(services)


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
