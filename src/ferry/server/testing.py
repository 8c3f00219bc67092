"""Test helpers: one PostgreSQL per test process, and a ferry server in a thread.

The store contract suite runs through :class:`~ferry.tracking.http.HttpRunStore` against a
live server: :class:`ThreadServer` serves the real app (uvicorn on a loopback port) in a
thread of the test process, and :meth:`ThreadServer.serve` points it at another database
between tests, so one server answers the whole session while each test starts from an empty
history. :func:`shared_postgres` starts the session's one PostgreSQL (``ferry.testing.
postgres``) on first use and stops it when the process exits.

Example::

    cluster = shared_postgres()
    server = ThreadServer.start(services)      # services = ServerServices.open(config)
    store = HttpRunStore(ServerConnection(server.url, token))
"""

from __future__ import annotations

import atexit
import socket
import threading
import time
from contextlib import AbstractContextManager
from typing import Any

from ferry.server.services import ServerServices
from ferry.testing.postgres import PostgresCluster, postgres_cluster

_cluster: PostgresCluster | None = None
_context: AbstractContextManager[PostgresCluster] | None = None


def shared_postgres() -> PostgresCluster:
    """The process's PostgreSQL server (started once; stopped at exit)."""
    global _cluster, _context
    if _cluster is None:
        _context = postgres_cluster()
        _cluster = _context.__enter__()
        atexit.register(_context.__exit__, None, None, None)
    return _cluster


class ThreadServer:
    """The ferry app served by uvicorn in a thread (no supervisor pool)."""

    def __init__(self, server: Any, thread: threading.Thread, port: int, app: Any) -> None:
        self._server = server
        self._thread = thread
        self.port = port
        self.app = app

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, services: ServerServices) -> ThreadServer:
        import uvicorn

        from ferry.server.app import create_app

        app = create_app(services, supervise=False)
        # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets whose proto says
        # TCP, and without it every response waits ~40 ms for a delayed ACK
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="ferry-test-server", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start within 30 s")
            time.sleep(0.01)
        return cls(server, thread, port, app)

    def serve(self, services: ServerServices) -> None:
        """Answer from now on with ``services`` (another database, another blob store)."""
        self.app.state.services = services

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
