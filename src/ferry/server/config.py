"""How one ``ferry server`` process is set up: database, blob store, folders, address, limits.

Plain data, read from the command line (``ferry server --database-url … --blob-store …``) and
carried to every API process through environment variables (uvicorn starts ``--processes N``
copies of the app from :func:`ferry.server.app.app_from_env`). The database URL may hold a
password: it is passed only in ``FERRY_DATABASE_URL`` (which no job ever sees) and shown
everywhere else without it. The blob store is a folder or a bucket URL (``s3://bucket/prefix``);
a bucket's credentials are never part of the configuration: each process's backend finds them
in its environment (``AWS_ACCESS_KEY_ID`` …, ``~/.aws``, an instance role).

Example::

    config = ServerConfig(database_url="postgresql+psycopg://ferry@db/ferry",
                          blob_store="/srv/ferry/blobs", data_dir=Path("/srv/ferry"))
    config = ServerConfig(..., blob_store="s3://team-ferry/blobs", ...)  # shared by servers
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ferry.errors import ConfigError

if TYPE_CHECKING:
    from ferry.snapshot.blobstore.local import LocalBlobStore

#: the REST API's version; a client speaking another one is refused with the reason
API_VERSION = 1
API_PREFIX = "/api/v1"
#: the request header (and response header) naming the API version
VERSION_HEADER = "Ferry-Api-Version"
DEFAULT_PORT = 8765
#: largest JSON request body (a metric batch of ~1M values fits); blobs have their own limit
DEFAULT_MAX_BODY = 64 * 1024 * 1024
DEFAULT_MAX_BLOB = 16 * 1024 * 1024 * 1024


@dataclass(frozen=True)
class ServerConfig:
    """Everything a server process needs to know (no secrets but inside ``database_url``)."""

    database_url: str
    blob_store: str
    #: the server's own workspace folder: run folders, environments, caches
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    #: how jobs reach this server (MLflow's tracking URI inside runs); default http://host:port
    public_url: str | None = None
    #: supervisors this process runs at once; 0 = this process supervises nothing
    supervisors: int = 4
    max_body: int = DEFAULT_MAX_BODY
    max_blob: int = DEFAULT_MAX_BLOB
    processes: int = 1
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def blobs_remote(self) -> bool:
        """Whether the blob store is a bucket (``s3://…``, any fsspec URL) rather than a folder."""
        from ferry.snapshot.blobstore.remote import is_remote

        return is_remote(self.blob_store)

    def blob_location(self) -> str:
        """The blob store as every process of this server opens it: the bucket's URL (checked:
        no credentials in it), or the folder's absolute path."""
        if self.blobs_remote:
            from ferry.snapshot.blobstore.bucket import check_url

            return check_url(self.blob_store)
        return str(self.blob_path())

    def blob_path(self) -> Path:
        """Where blobs are on this machine: the store's folder, or, for a bucket, the folder
        caching the blobs read from it (``<data_dir>/blobs``, the server workspace's own)."""
        if self.blobs_remote:
            return self.data_dir / "blobs"
        return Path(self.blob_store.removeprefix("file://")).expanduser().resolve()

    def open_blobs(self) -> LocalBlobStore:
        """The blob store (a bucket's with its local cache); cheap, nothing is contacted."""
        from ferry.snapshot.blobstore.remote import open_blob_store

        return open_blob_store(self.blob_location(), self.blob_path())

    def to_env(self) -> dict[str, str]:
        """The variables :meth:`from_env` reads back (in the API processes uvicorn starts)."""
        return {
            "FERRY_DATABASE_URL": self.database_url,
            "FERRY_BLOB_STORE": self.blob_location(),
            "FERRY_SERVER_DATA_DIR": str(self.data_dir),
            "FERRY_SERVER_HOST": self.host,
            "FERRY_SERVER_PORT": str(self.port),
            "FERRY_SERVER_PUBLIC_URL": self.public_url or "",
            "FERRY_SERVER_SUPERVISORS": str(self.supervisors),
            "FERRY_SERVER_MAX_BODY": str(self.max_body),
            "FERRY_SERVER_MAX_BLOB": str(self.max_blob),
        }

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ServerConfig:
        env = dict(os.environ if env is None else env)
        try:
            return cls(
                database_url=env["FERRY_DATABASE_URL"],
                blob_store=env["FERRY_BLOB_STORE"],
                data_dir=Path(env["FERRY_SERVER_DATA_DIR"]),
                host=env.get("FERRY_SERVER_HOST", "127.0.0.1"),
                port=int(env.get("FERRY_SERVER_PORT", DEFAULT_PORT)),
                public_url=env.get("FERRY_SERVER_PUBLIC_URL") or None,
                supervisors=int(env.get("FERRY_SERVER_SUPERVISORS", "4")),
                max_body=int(env.get("FERRY_SERVER_MAX_BODY", DEFAULT_MAX_BODY)),
                max_blob=int(env.get("FERRY_SERVER_MAX_BLOB", DEFAULT_MAX_BLOB)),
            )
        except KeyError as exc:
            raise ConfigError(
                f"the server process needs {exc.args[0]} in its environment"
            ) from None
        except ValueError as exc:
            raise ConfigError(f"a server setting is not a number: {exc}") from None
