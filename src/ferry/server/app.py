"""The FastAPI application: ferry's REST API, MLflow's tracking API, one error boundary.

:func:`create_app` builds the app over opened :class:`~ferry.server.services.ServerServices`;
:func:`app_from_env` is what each of uvicorn's processes calls (``ferry server --processes N``).
The app is stateless apart from its supervisor pool: any number of processes may share one
database and one blob store. Every route, the OpenAPI document included, needs a token.

Example::

    services = ServerServices.open(ServerConfig(database_url=…, blob_store=…, data_dir=…))
    uvicorn.run(create_app(services), host="127.0.0.1", port=8765)
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI

from ferry.server import boundary, routes_assets, routes_files, routes_mlflow, routes_store
from ferry.server.auth import principal
from ferry.server.config import API_PREFIX, API_VERSION, ServerConfig
from ferry.server.services import ServerServices
from ferry.ui import routes as ui_routes

DESCRIPTION = """ferry's workspace over HTTP: experiments, runs, statuses, metrics, tags,
properties, files, snapshots (blobs by hash), environments and compute targets, plus MLflow's
tracking REST API under /api/2.0/mlflow. Send `Authorization: Bearer <token>` with every
request; `Ferry-Api-Version` names the API a client speaks."""


_Principal = Depends(principal)


def create_app(services: ServerServices, *, supervise: bool = True) -> FastAPI:
    """The app; with ``supervise`` (and supervisors configured) it runs the supervisor pool."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # what start-up loaded (modules, the app) stays: keep it out of every later garbage
        # collection, whose full passes otherwise added tens of ms to some answers
        gc.collect()
        gc.freeze()
        pool = None
        if supervise and services.config.supervisors > 0:
            from ferry.server.worker import SupervisorPool

            pool = SupervisorPool(services)
            services.pool = pool
            pool.start()
        try:
            yield
        finally:
            if pool is not None:
                pool.stop()
                services.pool = None

    app = FastAPI(
        title="ferry server",
        version=str(API_VERSION),
        description=DESCRIPTION,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        default_response_class=boundary.FerryJSON,
    )
    app.state.services = services
    boundary.install(app)
    app.include_router(routes_store.router, prefix=API_PREFIX)
    app.include_router(routes_files.router, prefix=API_PREFIX)
    app.include_router(routes_assets.router, prefix=API_PREFIX)
    app.include_router(routes_mlflow.router)
    app.include_router(ui_routes.router, prefix=API_PREFIX)

    @app.get(f"{API_PREFIX}/openapi.json", tags=["server"], include_in_schema=False)
    def openapi(_: Any = _Principal) -> dict[str, Any]:
        return api_document()

    ui_routes.install_pages(app)
    app.add_middleware(
        boundary.Guard, max_body=services.config.max_body, max_blob=services.config.max_blob
    )
    return app


def api_document() -> dict[str, Any]:
    """The OpenAPI document of the server's API (no server needed: for clients and fuzzers)."""
    app = FastAPI(title="ferry server", version=str(API_VERSION), description=DESCRIPTION)
    app.include_router(routes_store.router, prefix=API_PREFIX)
    app.include_router(routes_files.router, prefix=API_PREFIX)
    app.include_router(routes_assets.router, prefix=API_PREFIX)
    app.include_router(routes_mlflow.router)
    app.include_router(ui_routes.router, prefix=API_PREFIX)
    document: dict[str, Any] = app.openapi()
    return document


def app_from_env() -> FastAPI:
    """One API process of ``ferry server --processes N`` (its settings in the environment)."""
    return create_app(ServerServices.open(ServerConfig.from_env(), export=False))
