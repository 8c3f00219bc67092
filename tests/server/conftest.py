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
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ferry.testing.postgres import PostgresCluster, PostgresUnavailable

#: the heartbeat interval of the server's supervisors and of the tests' readers
HEARTBEAT = "1"


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


def ferry_cli(
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    check: bool = True,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run the ferry command line in a fresh interpreter (no warm zygote)."""
    full = dict(os.environ if env is None else env)
    full["FERRY_NO_DAEMON"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", "from ferry.cli.main import main; main()", *args],
        capture_output=True,
        text=True,
        env=full,
        input=stdin,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"ferry {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """A `ferry server` process and what the tests need to talk to it."""

    url: str
    database_url: str
    data_dir: Path
    blob_dir: Path
    admin_token: str
    user_token: str
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    log: Path
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, user: str, *, admin: bool = False, **kwargs: Any) -> str:
        """A token of ``user`` (created with the CLI, as an operator would)."""
        if user not in self.tokens:
            known = ferry_cli("server", "user", "list", "--json", env=self.env).stdout
            if user not in {u["name"] for u in json.loads(known)}:
                ferry_cli(
                    "server", "user", "add", user, *(["--admin"] if admin else []), env=self.env
                )
            out = ferry_cli("server", "token", "create", user, "--json", env=self.env).stdout
            self.tokens[user] = json.loads(out)["token"]
        return self.tokens[user]

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.user_token}"}
        return httpx.get(self.url + path, headers=headers, timeout=30, **kwargs)

    def post(
        self, path: str, body: Any = None, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.user_token}"}
        return httpx.post(self.url + path, json=body, headers=headers, timeout=30, **kwargs)

    def server_log(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start_server(
    database_url: str,
    folder: Path,
    *,
    port: int | None = None,
    supervisors: int = 2,
    extra: tuple[str, ...] = (),
    wait: bool = True,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """Start `ferry server` and wait until it answers (a 401 to a request without a token)."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log = folder / f"server-{port}.log"
    folder.mkdir(parents=True, exist_ok=True)
    full = dict(os.environ if env is None else env)
    full.update({"FERRY_NO_DAEMON": "1", "FERRY_HEARTBEAT_SECONDS": HEARTBEAT})
    full.pop("FERRY_DATABASE_URL", None)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from ferry.cli.main import main; main()",
                "server",
                "--database-url",
                database_url,
                "--blob-store",
                str(folder / "blobs"),
                "--data-dir",
                str(folder / "data"),
                "--port",
                str(port),
                "--supervisors",
                str(supervisors),
                *extra,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full,
            start_new_session=True,
        )
    if wait:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/api/v1/info", timeout=2).status_code == 401:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"ferry server did not start:\n{log.read_text(errors='replace')}"
                )
            time.sleep(0.05)
    return proc, url, log


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
