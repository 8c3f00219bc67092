"""Reaching a bucket: its URL checked, fsspec's file system for it, its errors in ferry's terms.

Credentials are never part of a URL (one carrying them is refused) and never part of a message:
the backends find them in the environment and their standard files, and every error text is
scrubbed of the secret variables before it is shown. Errors are mapped where they cross into
ferry: no credentials, refused credentials and a missing bucket are a
:class:`~ferry.errors.ConfigError` naming the fix; anything else (unreachable, timed out) is
:class:`BlobStoreUnavailable`, which a caller may retry (the server answers 503).

Example::

    fs, root = file_system("s3://team-ferry/blobs", "s3")   # (S3FileSystem, "team-ferry/blobs")
    raise translate(exc, "s3://team-ferry/blobs", "s3", "storing blob ab12…")
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from ferry.data.credentials import scrub
from ferry.errors import ConfigError, FerryError, SnapshotError
from ferry.tracking.database import StoreUnavailable

#: the package to install for each protocol fsspec names
_INSTALL = {
    "s3": "pip install 'ferry[data]' (s3fs)",
    "s3a": "pip install 'ferry[data]' (s3fs)",
    "az": "pip install 'ferry[data]' (adlfs)",
    "abfs": "pip install 'ferry[data]' (adlfs)",
    "abfss": "pip install 'ferry[data]' (adlfs)",
    "gs": "pip install gcsfs",
    "gcs": "pip install gcsfs",
}
#: environment variables holding secrets the backends read (scrubbed from every message)
_SECRET_VARIABLES = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_CLIENT_SECRET",
    "AZURE_STORAGE_CLIENT_SECRET",
)
#: where each backend looks for credentials (said after "set" or "check")
_CREDENTIAL_HINT = {
    "s3": "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, ~/.aws/credentials, an "
    "instance role) in the server's environment",
    "az": "AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_NAME with "
    "AZURE_STORAGE_ACCOUNT_KEY (or AZURE_STORAGE_SAS_TOKEN, or a service principal's "
    "AZURE_STORAGE_CLIENT_* variables) in the server's environment",
    "gs": "GOOGLE_APPLICATION_CREDENTIALS (or `gcloud auth application-default login`) for the "
    "server",
}


class BlobStoreUnavailable(StoreUnavailable):
    """The bucket cannot be reached now (refused, timed out): a retry may work (HTTP 503)."""


def check_url(url: str) -> str:
    """``url`` if it names a bucket without a secret in it; else a ConfigError saying why."""
    parts = urlsplit(url)
    if "@" in parts.netloc or parts.query or parts.password:
        raise ConfigError(
            f"blob store {scrub(url, [parts.password or ''])!r}: a URL must not carry "
            "credentials or options; give them in the server's environment (for S3: "
            "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL …)"
        )
    if not parts.scheme or not parts.netloc:
        raise ConfigError(f"blob store {url!r}: give a bucket URL such as s3://BUCKET/PREFIX")
    return url.rstrip("/")


def translate(exc: BaseException, url: str, protocol: str, doing: str) -> FerryError:
    """The ferry error for a backend error: refused credentials and a missing bucket are
    ConfigErrors naming the fix; an unreachable service is :class:`BlobStoreUnavailable`."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    raw = scrub(f"{type(exc).__name__}: {exc}", _secrets())
    text = raw.splitlines()[0][:300] if raw else type(exc).__name__
    family = {"s3a": "s3", "abfs": "az", "abfss": "az", "gcs": "gs"}.get(protocol, protocol)
    hint = _CREDENTIAL_HINT.get(family, "the backend's credentials in the environment")
    where = f"blob store {url}"
    if "NoCredentialsError" in names or "Unable to locate credentials" in text:
        return ConfigError(f"{where}: no credentials found while {doing}; set {hint}")
    if "PermissionError" in names or "ClientAuthenticationError" in names or any(
        code in text
        for code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden",
                     "AuthenticationFailed", "AuthorizationFailure", "does not match the signature")
    ):  # fmt: skip
        return ConfigError(f"{where} refused the credentials while {doing}: {text}; check {hint}")
    bucket = urlsplit(url).netloc
    if any(
        sign in text
        for sign in ("NoSuchBucket", "bucket does not exist", "ContainerNotFound",
                     "container does not exist")
    ):  # fmt: skip
        make = {
            "s3": f"`aws s3 mb s3://{bucket}`",
            "az": f"`az storage container create --name {bucket}`",
            "gs": f"`gcloud storage buckets create gs://{bucket}`",
        }.get(family, "the backend's tools")
        return ConfigError(
            f"{where}: the bucket {bucket!r} does not exist; create it ({make}) or give another "
            "with --blob-store"
        )
    if isinstance(exc, FileNotFoundError):
        return SnapshotError(f"{where}: not found while {doing}: {text}")
    endpoint = " (AWS_ENDPOINT_URL for an S3-compatible service)" if family == "s3" else ""
    return BlobStoreUnavailable(
        f"{where} cannot be used while {doing}: {text}; check that the service is up and its "
        f"endpoint is right{endpoint}, then retry"
    )


def file_system(url: str, protocol: str) -> tuple[Any, str]:
    """fsspec's file system for ``url`` and the path of the store's root in it."""
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(url, use_listings_cache=False, skip_instance_cache=True)
    except ImportError:
        hint = _INSTALL.get(protocol, "install the fsspec backend for it")
        raise ConfigError(
            f"blob store {url}: the {protocol}:// backend is not installed: {hint}"
        ) from None
    except ValueError as exc:
        raise ConfigError(f"blob store {url}: {scrub(str(exc), _secrets())}") from None
    except Exception as exc:
        raise translate(exc, url, protocol, "opening it") from None
    root = str(root).rstrip("/")
    if not root:
        raise ConfigError(f"blob store {url}: name a bucket, e.g. s3://BUCKET/PREFIX")
    return fs, root


def _secrets() -> list[str]:
    return [os.environ.get(name, "") for name in _SECRET_VARIABLES]
