"""How one ``ferry server`` process is set up: database, blob store, folders, address, limits.

Plain data, read from the command line (``ferry server --database-url … --blob-store …``) and
carried to every API process through environment variables (uvicorn starts ``--processes N``
copies of the app from :func:`ferry.server.app.app_from_env`). The database URL may hold a
password: it is passed only in ``FERRY_DATABASE_URL`` (which no job ever sees) and shown
everywhere else without it.

Example::

    config = ServerConfig(database_url="postgresql+psycopg://ferry@db/ferry",
                          blob_store="/srv/ferry/blobs", data_dir=Path("/srv/ferry"))
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ferry.errors import ConfigError

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

    def blob_path(self) -> Path:
        """The blob store's folder (an ``s3://`` store is not supported by this build)."""
        if "://" in self.blob_store and not self.blob_store.startswith("file://"):
            scheme = self.blob_store.split("://", 1)[0]
            raise ConfigError(
                f"blob store {self.blob_store!r}: the {scheme}:// scheme is not supported yet; "
                "give a folder (shared by every server process)"
            )
        return Path(self.blob_store.removeprefix("file://")).expanduser().resolve()

    def to_env(self) -> dict[str, str]:
        """The variables :meth:`from_env` reads back (in the API processes uvicorn starts)."""
        return {
            "FERRY_DATABASE_URL": self.database_url,
            "FERRY_BLOB_STORE": str(self.blob_path()),
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
