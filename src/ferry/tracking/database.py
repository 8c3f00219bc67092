"""Opening the run history's SQL database: the file, the engine, the schema, the errors.

Everything that can go wrong before the first query lives here, so the store itself only writes
rows. Three rules:

- A SQLite file ferry creates is private (0600; SQLite gives its -wal and -shm files the same
  mode), whatever the umask.
- A database ferry cannot use is a :class:`~ferry.errors.StoreError` naming the file and the
  fix, never a traceback: a corrupt or foreign file, another application's tables, a schema
  written by a newer ferry, and a zero-length ``ferry.db`` beside run folders (the history was
  truncated; silently starting an empty one would hide every run).
- Opening an older database upgrades it with Alembic, one process at a time (SQLite's write
  lock; an advisory lock on PostgreSQL).
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from ferry.errors import StoreError
from ferry.tracking import schema as t

_BUSY_TIMEOUT_MS = 60_000
#: a pooled PostgreSQL connection idle this long is pinged before it is used again
_PING_AFTER_IDLE_SECONDS = 2.0
# any fixed number: serialises schema upgrades of one PostgreSQL database across processes
_MIGRATION_LOCK_KEY = 0x66657272


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (None for other databases and memory)."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def describe(url: str) -> str:
    """How messages name the database: the file path, or the URL without its password."""
    path = sqlite_path(url)
    if path is not None:
        return str(path)
    return sa.engine.make_url(url).render_as_string(hide_password=True)


class StoreUnavailable(StoreError):
    """The database cannot be reached or used now (refused, locked, disk full): a retry may
    work; the server answers 503."""


def translate(exc: sa.exc.DBAPIError, url: str, doing: str) -> StoreError:
    """The StoreError for a driver error met while ``doing`` (open, read, write) the history."""
    where = describe(url)
    reason = str(exc.orig).strip() or type(exc.orig).__name__
    if isinstance(exc, sa.exc.IntegrityError):
        return StoreError(f"the run history at {where} refused a write: {reason}")
    if isinstance(exc, sa.exc.OperationalError):
        # locked, read-only, unreachable, disk full: the database itself is fine
        return StoreUnavailable(f"cannot {doing} the run history at {where}: {reason}")
    if type(exc) is sa.exc.DatabaseError and sqlite_path(url) is not None:
        # SQLite's NOTADB and CORRUPT codes: not an SQLite file, or a damaged one
        return not_a_ferry_database(where, reason)
    if not isinstance(exc, sa.exc.DatabaseError):  # the connection broke (InterfaceError)
        return StoreUnavailable(f"cannot {doing} the run history at {where}: {reason}")
    return StoreError(
        f"cannot {doing} the run history at {where} ({reason}); check that it is the database "
        "ferry was given (FERRY_DATABASE_URL), or restore it from a backup"
    )


def damaged_record(url: str, exc: ValueError) -> StoreError:
    """A stored value ferry cannot decode (a damaged page that SQLite did not notice)."""
    return StoreError(
        f"the run history at {describe(url)} holds a damaged record ({exc}); restore it from a "
        "backup, or move it away to start a new history"
    )


def not_a_ferry_database(where: str, reason: str) -> StoreError:
    return StoreError(
        f"{where} is not a ferry database ({reason}): move it away to start a new history, "
        "or restore it from a backup"
    )


def prepare_sqlite_file(path: Path) -> None:
    """Create the file private (0600) before SQLite does; refuse a truncated history."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        _refuse_truncated(path)
        return
    except OSError as exc:
        raise StoreError(
            f"cannot create the run history {path}: {exc.strerror}; check that the workspace "
            "folder exists and is writable (or choose another with FERRY_HOME)"
        ) from exc
    os.close(fd)


def _refuse_truncated(path: Path) -> None:
    try:
        if path.stat().st_size != 0:
            return
        runs = [entry.name for entry in os.scandir(path.parent / "runs")]
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return
        raise StoreError(f"cannot read the run history {path}: {exc.strerror}") from exc
    if runs:
        raise StoreError(
            f"{path} is empty (zero bytes), but {path.parent / 'runs'} holds {len(runs)} run "
            "folders: the run history was truncated. Restore the file from a backup; or move it "
            "away to start a new, empty history (the run folders are kept)"
        )


def _configure_sqlite(engine: Engine) -> None:
    """WAL, a long busy timeout and BEGIN IMMEDIATE for writers: many processes, no 'locked'."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("ferry_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _configure_server_database(engine: Engine) -> None:
    """A connection idle for a while is pinged before use, and replaced when the server
    dropped it (restarted, timed out): a request then never fails on a dead pooled
    connection. SQLAlchemy's ``pool_pre_ping`` pings before *every* use — a round trip more
    per request, a fifth of a search's time on a busy server. JSON columns are decoded by
    pydantic-core's parser (the same values as :func:`json.loads`, several times faster)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        if type(dbapi_conn).__module__.partition(".")[0] == "psycopg":
            from psycopg.types.json import set_json_loads
            from pydantic_core import from_json

            set_json_loads(from_json, dbapi_conn)

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["ferry_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("ferry_idle_since")
        if idle_since is None or time.monotonic() - idle_since < _PING_AFTER_IDLE_SECONDS:
            return
        try:
            cursor = dbapi_conn.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            dbapi_conn.rollback()
        except Exception as exc:  # the driver's own errors: this connection is gone
            raise sa.exc.DisconnectionError(str(exc)) from exc


def make_engine(url: str) -> Engine:
    """An engine on a usable, current database (created and upgraded when needed)."""
    path = sqlite_path(url)
    if path is not None:
        prepare_sqlite_file(path)
        engine = sa.create_engine(url, connect_args={"timeout": _BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
    elif sa.engine.make_url(url).get_backend_name() == "sqlite":
        engine = sa.create_engine(url)
        _configure_sqlite(engine)
    else:
        engine = sa.create_engine(url)
        _configure_server_database(engine)
    try:
        ensure_schema(engine, describe(url))
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        raise translate(exc, url, "open") from exc
    except StoreError:
        engine.dispose()
        raise
    return engine


def _revision(conn: Connection, where: str) -> str | None:
    """The schema revision stored in the database; refuses another application's tables."""
    tables = set(sa.inspect(conn).get_table_names())
    if "alembic_version" not in tables:
        if tables:
            shown = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
            raise not_a_ferry_database(where, f"it holds other tables: {shown}")
        return None
    current = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    if current not in t.KNOWN_REVISIONS:
        raise StoreError(
            f"the run history at {where} was written by a newer ferry (schema revision "
            f"{current}); upgrade ferry to use it"
        )
    return str(current)


def ensure_schema(engine: Engine, where: str) -> None:
    """Create or upgrade the schema; one query when it is current."""
    with engine.connect() as conn:
        current = _revision(conn, where)
        conn.rollback()
    if current == t.HEAD_REVISION:
        return
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.connect().execution_options(ferry_write=True) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK_KEY)))
        if _revision(conn, where) == t.HEAD_REVISION:  # another process upgraded it meanwhile
            return
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
