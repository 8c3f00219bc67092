"""Fixtures of the server's tests: one PostgreSQL, one ferry server, real parts only.

- ``pg``: the session's PostgreSQL (shared with the store contract suite).
- ``thread_server``: the app served in a thread of this process over its own database, for
  tests that look at the server's insides (its blob folder, its store).
- ``live``: ``ferry server`` started as a real process (migrations, supervisor pool) on a
  database of its own, with an admin and a user; submitted runs are supervised by it.

Without PostgreSQL the tests FAIL with the install command, never skip.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from server_helpers import HEARTBEAT, LiveServer, ferry_cli, start_server, stop

from ferry.testing.postgres import PostgresCluster, PostgresUnavailable


@pytest.fixture(scope="session")
def pg() -> PostgresCluster:
    from ferry.server.testing import shared_postgres

    try:
        return shared_postgres()
    except PostgresUnavailable as exc:
        pytest.fail(f"the server tests need PostgreSQL: {exc}", pytrace=False)


@pytest.fixture(autouse=True)
def _server_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERRY_HEARTBEAT_SECONDS", HEARTBEAT)


@pytest.fixture(scope="session")
def live(pg: PostgresCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("live server")
    database_url = pg.create_database()
    env = dict(os.environ)
    env["FERRY_HOME"] = str(folder / "home")
    env["FERRY_DATABASE_URL"] = database_url
    ferry_cli("server", "user", "add", "admin", "--admin", env=env)
    admin = json.loads(ferry_cli("server", "token", "create", "admin", "--json", env=env).stdout)
    ferry_cli("server", "user", "add", "ada", env=env)
    user = json.loads(ferry_cli("server", "token", "create", "ada", "--json", env=env).stdout)
    proc, url, log = start_server(database_url, folder, env=env)
    server = LiveServer(
        url,
        database_url,
        folder / "data",
        folder / "blobs",
        admin["token"],
        user["token"],
        env,
        proc,
        log,
        {"admin": admin["token"], "ada": user["token"]},
    )
    yield server
    stop(proc)


@pytest.fixture
def remote_ws(live: LiveServer, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A client's workspace on the live server (as after `ferry login`)."""
    from ferry.workspace import Workspace

    monkeypatch.setenv("FERRY_TOKEN", live.user_token)
    ws = Workspace.connect(live.url)
    yield ws
    ws.store.close()


@pytest.fixture(scope="session")
def thread_server(pg: PostgresCluster, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from ferry.server.config import ServerConfig
    from ferry.server.services import ServerServices
    from ferry.server.testing import ThreadServer

    folder = tmp_path_factory.mktemp("thread server")
    config = ServerConfig(
        database_url=pg.create_database(),
        blob_store=str(folder / "blobs"),
        data_dir=folder / "data",
        supervisors=0,
    )
    services = ServerServices.open(config, export=False)
    services.store.add_user("root", admin=True)
    server = ThreadServer.start(services)
    server.services = services  # type: ignore[attr-defined]
    server.token = services.store.create_token("root")  # type: ignore[attr-defined]
    yield server
    server.stop()
    services.close()
