"""Starting the server: open the database (migrating it), then uvicorn, in one or more processes.

Everything that can be wrong is said before the server listens: an unreachable database (its
URL shown without the password), one written by a newer ferry, a blob store folder that cannot
be used. With ``processes`` > 1 uvicorn starts that many API processes from
:func:`ferry.server.app.app_from_env`; each runs its own supervisor pool (the dispatch queue
gives each run to one of them).
"""

from __future__ import annotations

import logging
import sys

from ferry.server.config import ServerConfig
from ferry.tracking.database import describe


def serve(config: ServerConfig) -> None:
    import uvicorn

    from ferry.server.app import create_app
    from ferry.server.services import ServerServices

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    services = ServerServices.open(config)  # migrates; a clear StoreError if it cannot
    print(
        f"ferry server: {config.url} (database {describe(config.database_url)}, blobs "
        f"{config.blob_path()}, runs in {services.workspace.runs_dir})",
        file=sys.stderr,
        flush=True,
    )
    if config.processes > 1:
        services.close()
        uvicorn.run(
            "ferry.server.app:app_from_env",
            factory=True,
            host=config.host,
            port=config.port,
            workers=config.processes,
            log_level="warning",
        )
        return
    uvicorn.run(create_app(services), host=config.host, port=config.port, log_level="warning")
