"""Fixtures of the store contract suite: every store test runs on SQLite and on PostgreSQL.

PostgreSQL is a real server started once per test session (``ferry.testing.postgres``); each
test gets a database of its own. Without PostgreSQL the PostgreSQL half of the suite FAILS with
the install command (``make test`` installs it through scripts/sysdeps.sh).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferry.testing.postgres import PostgresCluster, PostgresUnavailable, postgres_cluster
from ferry.tracking import RunStore, open_store

DATABASES = ["sqlite", "postgresql"]
_STARTED: list[PostgresCluster] = []


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """A throw-away PostgreSQL server for the whole session (initdb + start ≈ 1 s)."""
    with contextlib.ExitStack() as stack:
        try:
            cluster = stack.enter_context(postgres_cluster())
        except PostgresUnavailable as exc:
            pytest.fail(f"the store tests need PostgreSQL: {exc}", pytrace=False)
        _STARTED.append(cluster)
        yield cluster


@pytest.fixture(scope="session")
def pg_url(pg_cluster: PostgresCluster) -> str:
    """The SQLAlchemy URL (postgresql+psycopg://…) of a database on the session's server."""
    return pg_cluster.create_database("ferry")


@pytest.fixture(scope="session")
def pg_template(pg_cluster: PostgresCluster) -> str:
    """A database with ferry's schema, copied for each test (faster than migrating each)."""
    name = "ferry_template"
    store = open_store(pg_cluster.create_database(name))
    store.list_experiments()
    store.close()  # a template may have no connections
    return name


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def empty_url(database: str, awkward_dir: Path, request: pytest.FixtureRequest) -> str:
    """A database with nothing in it: a new SQLite path, or a new PostgreSQL database."""
    if database == "sqlite":
        return f"sqlite:///{awkward_dir / 'ferry.db'}"
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    return cluster.create_database()


@pytest.fixture
def store_url(database: str, awkward_dir: Path, request: pytest.FixtureRequest) -> str:
    """An empty run history: a SQLite file in an awkward path, or a new PostgreSQL database
    holding the current schema (SQLite's is created by the first use)."""
    if database == "sqlite":
        return f"sqlite:///{awkward_dir / 'ferry.db'}"
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    return cluster.create_database(template=request.getfixturevalue("pg_template"))


@pytest.fixture
def store(store_url: str) -> Iterator[RunStore]:
    s = open_store(store_url)
    yield s
    s.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say what the PostgreSQL server cost, so that `make test` stays lean."""
    for cluster in _STARTED:
        terminalreporter.write_line(
            f"PostgreSQL test server: initdb {cluster.timings['initdb']:.2f} s, "
            f"start {cluster.timings['start']:.2f} s ({cluster.bin_dir})"
        )
