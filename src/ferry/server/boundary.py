"""The server's one error boundary: every error becomes a status and a reason, nothing else.

A :class:`~ferry.errors.FerryError` maps to its HTTP status here and only here; its message
(written for people, naming the fix) is the reason. Requests under ``/api/2.0/mlflow`` get
MLflow's error shape (``{"error_code": …, "message": …}``) so MLflow clients raise their own
exception; ferry's API answers ``{"error": {"code": …, "message": …}}``. An unexpected
exception is logged with its traceback and answered 500 without details. Two guards run before
any route: the client's API version (``Ferry-Api-Version``) and the size of the request body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic_core import to_json
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ferry.errors import (
    ConfigError,
    FerryError,
    InvalidTransition,
    RunNotFound,
    SnapshotError,
    StoreError,
)
from ferry.server.auth import Forbidden, Unauthenticated
from ferry.server.config import API_VERSION, VERSION_HEADER
from ferry.snapshot.errors import CorruptBlobError, MissingBlobError
from ferry.tracking.assets import AssetExists, AssetNotFound
from ferry.tracking.database import StoreUnavailable
from ferry.tracking.mlflow_api import MlflowError, mlflow_error

log = logging.getLogger("ferry.server")

_STATUS: list[tuple[type[BaseException], int]] = [
    (Unauthenticated, 401),
    (Forbidden, 403),
    (RunNotFound, 404),
    (MissingBlobError, 404),
    (InvalidTransition, 409),
    (AssetNotFound, 404),
    (AssetExists, 409),
    (CorruptBlobError, 409),
    (StoreUnavailable, 503),
    (MlflowError, 400),
    (ConfigError, 400),
    (SnapshotError, 422),
    (StoreError, 409),
    (FerryError, 400),
]
_MLFLOW_CODES = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "RESOURCE_DOES_NOT_EXIST"}


class FerryJSON(JSONResponse):
    """JSON that may carry NaN and infinities (metric values), as Python's json writes them;
    written by pydantic-core (a page of 100 runs in ~0.1 ms instead of ~0.5 ms)."""

    def render(self, content: Any) -> bytes:
        return to_json(content, inf_nan_mode="constants", fallback=_plain)


def _plain(value: Any) -> Any:
    """What pydantic-core does not write itself: a mapping that is not a dict (a record's
    read-only view) as a dict; anything else is a server error, as json.dumps would make it."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def status_of(exc: BaseException) -> int:
    if isinstance(exc, BodyTooLarge):
        return 413
    if isinstance(exc, MlflowError):
        return exc.status
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 500


def _answer(request: Request, status: int, code: str, message: str) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if request.url.path.startswith("/api/2.0/"):
        mlflow_code = _MLFLOW_CODES.get(status, "INVALID_PARAMETER_VALUE")
        if status >= 500:
            mlflow_code = "INTERNAL_ERROR" if status == 500 else "TEMPORARILY_UNAVAILABLE"
        if code.isupper():
            mlflow_code = code
        body: dict[str, Any] = {"error_code": mlflow_code, "message": message}
    else:
        body = {"error": {"code": code, "message": message}}
    return FerryJSON(body, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(FerryError)
    async def _ferry(request: Request, exc: FerryError) -> Response:
        status = status_of(exc)
        if isinstance(exc, MlflowError) or request.url.path.startswith("/api/2.0/"):
            mapped = exc if isinstance(exc, MlflowError) else mlflow_error(exc)
            if not isinstance(exc, MlflowError) and status in (401, 403, 503):
                return _answer(request, status, type(exc).__name__, str(exc))
            return _answer(
                request, mapped.status if status >= 400 else status, mapped.code, str(exc)
            )
        if status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, exc)
        answer = _answer(request, status, type(exc).__name__, str(exc))
        if isinstance(exc, CorruptBlobError) and exc.set_aside is not None:
            body = {
                "error": {
                    "code": "CorruptBlobError",
                    "message": str(exc),
                    "set_aside": exc.set_aside,
                }
            }
            return FerryJSON(body, status_code=status)
        return answer

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for error in exc.errors()[:5]:
            where = ".".join(str(p) for p in error.get("loc", ()))
            parts.append(f"{where}: {error.get('msg')}")
        return _answer(request, 422, "InvalidRequest", "; ".join(parts) or "invalid request")

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        return _answer(request, exc.status_code, "HTTPError", str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("internal error in %s %s", request.method, request.url.path)
        return _answer(request, 500, "InternalError", "internal server error (see the server log)")


class Guard:
    """ASGI middleware: refuse an incompatible client and an oversized body before routing."""

    def __init__(self, app: ASGIApp, max_body: int, max_blob: int) -> None:
        self.app = app
        self.max_body = max_body
        self.max_blob = max_blob

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        wanted = headers.get(VERSION_HEADER.lower())
        if wanted is not None and wanted.strip() != str(API_VERSION):
            await _send(
                send,
                400,
                {
                    "error": {
                        "code": "IncompatibleClient",
                        "message": f"this client speaks ferry API {wanted.strip()[:20]!r}, the "
                        f"server API {API_VERSION}; install the ferry version the server runs",
                    }
                },
            )
            return
        path: str = scope.get("path", "")
        limit = (
            self.max_blob
            if "/blobs/" in path or "/artifacts" in path or "/files/" in path
            else self.max_body
        )
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _send(send, 413, _too_large(limit))
            return
        streamed = "/blobs/" in path or "/artifacts" in path or "/files/" in path
        if length is None and not streamed:
            # a chunked JSON body: read it whole here (a parser downstream would turn the
            # overflow into a 400), then hand it on
            body = bytearray()
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    break
                body += message.get("body", b"")
                more = bool(message.get("more_body"))
                if len(body) > limit:
                    await _send(send, 413, _too_large(limit))
                    return
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": bytes(body), "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


class BodyTooLarge(FerryError):
    """A request body past the server's limit (413); raised while the body is read."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the request body is larger than this server accepts ({limit} bytes); "
            "send it in smaller batches"
        )


def _too_large(limit: int) -> dict[str, Any]:
    return {"error": {"code": "BodyTooLarge", "message": str(BodyTooLarge(limit))}}


async def _send(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                (VERSION_HEADER.lower().encode(), str(API_VERSION).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
