"""Fixtures of the store contract suite: every store test runs on SQLite, on PostgreSQL, and
through the HTTP store against a live ferry server (on PostgreSQL).

PostgreSQL is a real server started once per test session (``ferry.server.testing.
shared_postgres``, shared with the server's tests); each test gets a database of its own. The
ferry server is one per session too (``ThreadServer``): before each HTTP test it is pointed at
that test's new database. Without PostgreSQL the PostgreSQL and HTTP halves of the suite FAIL
with the install command (``make test`` installs it through scripts/sysdeps.sh).

Tests that exercise the SQL implementation itself (a connection killed inside a transaction)
are not run through HTTP: :data:`SQL_ONLY`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ferry.testing.postgres import PostgresCluster, PostgresUnavailable
from ferry.tracking import RunStore, open_store

DATABASES = ["sqlite", "postgresql"]
STORES = [*DATABASES, "http"]
#: tests of the SQL store's own machinery: deselected for the HTTP store
SQL_ONLY = {"test_a_connection_lost_midway_stores_neither_ops_nor_cursor"}
_STARTED: list[PostgresCluster] = []


@pytest.fixture(scope="session")
def pg_cluster() -> PostgresCluster:
    """The session's throw-away PostgreSQL server (initdb + start ≈ 1 s)."""
    from ferry.server.testing import shared_postgres

    try:
        cluster = shared_postgres()
    except PostgresUnavailable as exc:
        pytest.fail(f"the store tests need PostgreSQL: {exc}", pytrace=False)
    if cluster not in _STARTED:
        _STARTED.append(cluster)
    return cluster


@pytest.fixture(scope="session")
def pg_url(pg_cluster: PostgresCluster) -> str:
    """The SQLAlchemy URL (postgresql+psycopg://…) of a database on the session's server."""
    return pg_cluster.create_database("ferry")


@pytest.fixture(scope="session")
def pg_template(pg_cluster: PostgresCluster) -> str:
    """A database with ferry's schema and an admin's token, copied for each test (faster
    than migrating each)."""
    from ferry.tracking.accounts import ServerStore

    name = "ferry_template"
    store = ServerStore(pg_cluster.create_database(name))
    store.add_user("admin", admin=True)
    _TOKEN.append(store.create_token("admin"))
    store.close()  # a template may have no connections
    return name


_TOKEN: list[str] = []


@pytest.fixture(params=STORES)
def database(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=DATABASES)
def sql_database(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def empty_url(sql_database: str, awkward_dir: Path, request: pytest.FixtureRequest) -> str:
    """A database with nothing in it: a new SQLite path, or a new PostgreSQL database."""
    if sql_database == "sqlite":
        return f"sqlite:///{awkward_dir / 'ferry.db'}"
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    return cluster.create_database()


@pytest.fixture
def store_url(database: str, awkward_dir: Path, request: pytest.FixtureRequest) -> str:
    """An empty run history: a SQLite file in an awkward path, or a new PostgreSQL database
    holding the current schema (SQLite's is created by the first use); for the HTTP store,
    the PostgreSQL database its server uses."""
    if database == "sqlite":
        return f"sqlite:///{awkward_dir / 'ferry.db'}"
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    return cluster.create_database(template=request.getfixturevalue("pg_template"))


@pytest.fixture(scope="session")
def http_server(
    pg_template: str, pg_cluster: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
):  # type: ignore[no-untyped-def]
    """The session's ferry server (in a thread), re-pointed at each HTTP test's database."""
    from ferry.server.config import ServerConfig
    from ferry.server.services import ServerServices
    from ferry.server.testing import ThreadServer

    folder = tmp_path_factory.mktemp("ferry-server")
    config = ServerConfig(
        database_url=pg_cluster.create_database(template=pg_template),
        blob_store=str(folder / "blobs"),
        data_dir=folder / "data",
        supervisors=0,
    )
    services = ServerServices.open(config, export=False)
    server = ThreadServer.start(services)
    yield server
    server.stop()
    services.close()


@pytest.fixture
def store(
    database: str, store_url: str, request: pytest.FixtureRequest, awkward_dir: Path
) -> Iterator[RunStore]:
    if database != "http":
        s = open_store(store_url)
        yield s
        s.close()
        return
    from ferry.server.config import ServerConfig
    from ferry.server.services import ServerServices
    from ferry.tracking.http import HttpRunStore, ServerConnection

    # the contract is the store's: no heartbeat verdict (the server judges liveness on reads)
    # may move a hand-made run while a test on a loaded machine is slow
    request.getfixturevalue("monkeypatch").setenv("FERRY_HEARTBEAT_SECONDS", "3600")
    server = request.getfixturevalue("http_server")
    config = ServerConfig(
        database_url=store_url,
        blob_store=str(awkward_dir / "server blobs"),
        data_dir=awkward_dir / "server data",
        supervisors=0,
    )
    services = ServerServices.open(config, export=False)
    server.serve(services)
    s = HttpRunStore(
        ServerConnection(server.url, _TOKEN[0]), mirror=awkward_dir / "client" / "runs"
    )
    yield s
    s.close()
    services.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The SQL store's own machinery is not tested through HTTP."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        name = getattr(item, "originalname", item.name)
        if callspec is not None and callspec.params.get("database") == "http" and name in SQL_ONLY:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say what the PostgreSQL server cost, so that `make test` stays lean."""
    for cluster in _STARTED:
        terminalreporter.write_line(
            f"PostgreSQL test server: initdb {cluster.timings['initdb']:.2f} s, "
            f"start {cluster.timings['start']:.2f} s ({cluster.bin_dir})"
        )
