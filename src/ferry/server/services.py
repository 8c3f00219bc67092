"""What every route uses: the server's workspace, its store (with users and tokens), its blobs.

One :class:`ServerServices` per API process. The workspace is an ordinary ferry workspace in
the server's data folder whose run history is the shared database and whose blobs are the
shared blob store, so supervisors started by the server (:mod:`ferry.server.worker`) open the
same workspace from the same variables.

Opening checks the database at once: an unreachable one, or one written by a newer ferry, is a
clear :class:`~ferry.errors.StoreError` before the server listens. A blob store in a bucket
(``s3://…``) is checked too (one small object written, read and removed): a missing bucket or
missing or refused credentials is a :class:`~ferry.errors.ConfigError` naming the fix, an
unreachable endpoint a StoreError. Its blobs read here are cached in the data folder's
``blobs/``, where supervisors and targets find them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ferry import liveness
from ferry.server.config import ServerConfig
from ferry.snapshot import LocalBlobStore
from ferry.snapshot.blobstore.remote import RemoteBlobStore
from ferry.tracking import RunRecord
from ferry.tracking.accounts import ServerStore
from ferry.workspace import Workspace

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from ferry.server.worker import SupervisorPool


@dataclass
class ServerServices:
    config: ServerConfig
    store: ServerStore
    blobs: LocalBlobStore
    workspace: Workspace
    #: this process's supervisor pool (None when it supervises nothing)
    pool: SupervisorPool | None = None

    @classmethod
    def open(cls, config: ServerConfig, *, export: bool = True) -> ServerServices:
        """Open (and migrate) the database, the blob store and the data folder.

        With ``export`` the variables supervisors need are put into this process's
        environment, so every process it starts opens the same workspace.
        """
        if export:
            os.environ.update(config.to_env())
        store = ServerStore(config.database_url)
        store.list_experiments()  # reachable, migrated, ours: or a StoreError saying why
        fast_toast(store.engine)
        blobs = config.open_blobs()
        if isinstance(blobs, RemoteBlobStore):
            for name in ("botocore", "aiobotocore", "s3fs", "azure", "adlfs"):
                # their INFO lines ("Found credentials in …") are noise in the server's log
                logging.getLogger(name).setLevel(logging.WARNING)
            try:
                blobs.probe()  # the bucket, its credentials: or a ConfigError saying the fix
            except BaseException:
                store.close()
                raise
        workspace = Workspace.serving(config.data_dir, store, blobs)
        return cls(config, store, blobs, workspace)

    def server_side(self, record: RunRecord) -> RunRecord:
        """A client's new run with its folder where the server keeps it (a client names its
        own copy; supervisors and readers here use the server's)."""
        if record.run_dir is None:
            return record
        return replace(record, run_dir=str(self.workspace.runs_dir / record.id))

    def read_run(self, run_id: str) -> RunRecord:
        """The run as readers see it: a run whose supervisor stopped beating is moved on
        here, where its folder is (:func:`ferry.liveness.check`)."""
        return liveness.check(self.store, self.store.get_run(run_id))

    def wake(self) -> None:
        """A run was queued: let this process's pool look now rather than at its next tick."""
        if self.pool is not None:
            self.pool.wake()

    def close(self) -> None:
        self.store.close()


def fast_toast(engine: Engine) -> None:
    """Compress large values with lz4 on this engine's PostgreSQL connections, when the
    server has it. A batch of 10,000 metric values is ~0.5 MB of JSON text: PostgreSQL's
    default (pglz) spends ~10 ms a column compressing it, lz4 under 1 ms (values written
    before stay readable: each value names its own method)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as conn:
        found = conn.execute(
            sa.text(
                "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' "
                "AND 'lz4' = ANY(enumvals)"
            )
        ).first()
    if found is None:
        return

    def use_lz4(dbapi_conn: Any, _record: Any) -> None:
        autocommit = dbapi_conn.autocommit
        dbapi_conn.autocommit = True  # a session setting, outside any transaction
        with dbapi_conn.cursor() as cur:
            cur.execute("SET default_toast_compression = 'lz4'")
        dbapi_conn.autocommit = autocommit

    sa.event.listen(engine, "connect", use_lz4)
    engine.dispose()  # the connections opened so far were made without it
