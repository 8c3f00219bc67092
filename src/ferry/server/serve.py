"""Starting the server: open the database (migrating it), then uvicorn, in one or more processes.

Everything that can be wrong is said before the server listens: an unreachable database (its
URL shown without the password), one written by a newer ferry, a blob store folder that cannot
be used. With ``processes`` > 1 uvicorn starts that many API processes from
:func:`ferry.server.app.app_from_env`; each runs its own supervisor pool (the dispatch queue
gives each run to one of them).

Every accepted connection has ``TCP_NODELAY``: asyncio sets it only on sockets whose protocol
says TCP, and uvicorn's own listening socket for several processes says 0 — without it each
response's body waits for the client's delayed ACK (~40 ms a request on Linux).
"""

from __future__ import annotations

import logging
import socket
import sys

import uvicorn

from ferry.server.config import ServerConfig
from ferry.tracking.database import describe


class TcpConfig(uvicorn.Config):
    """uvicorn's settings, its listening socket saying TCP (so accepted ones get NODELAY)."""

    def bind_socket(self) -> socket.socket:
        bound = super().bind_socket()
        tcp = socket.socket(bound.family, bound.type, socket.IPPROTO_TCP, bound.detach())
        tcp.set_inheritable(True)
        return tcp


def serve(config: ServerConfig) -> None:
    from ferry.server.app import create_app
    from ferry.server.services import ServerServices

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    services = ServerServices.open(config)  # migrates; a clear StoreError if it cannot
    print(
        f"ferry server: {config.url} (database {describe(config.database_url)}, blobs "
        f"{config.blob_location()}, runs in {services.workspace.runs_dir})",
        file=sys.stderr,
        flush=True,
    )
    if config.processes > 1:
        from uvicorn.supervisors import Multiprocess

        services.close()
        shared = TcpConfig(
            "ferry.server.app:app_from_env",
            factory=True,
            host=config.host,
            port=config.port,
            workers=config.processes,
            log_level="warning",
        )
        Multiprocess(shared, sockets=[shared.bind_socket()]).run()
        return
    uvicorn.run(create_app(services), host=config.host, port=config.port, log_level="warning")
