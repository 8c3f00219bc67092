"""Blobs by hash, run folders, starting runs, the server's description, users and tokens.

Blob uploads are verified on arrival: the body is hashed as it is written to a temporary file,
and a body that does not hash to the digest in the URL is refused (422) with nothing stored.
Clients ask which blobs are lacking first (``POST /blobs/lacking``) and send only those. With
the blob store in a bucket (``--blob-store s3://…``) a verified upload goes on to the bucket
(:class:`~ferry.snapshot.blobstore.remote.RemoteBlobStore`), and blobs are served from this
server's cache of it.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

import ferry
from ferry.errors import ConfigError, SnapshotError
from ferry.server import runfiles
from ferry.server.auth import principal, require_admin, require_runs, require_user, services
from ferry.server.config import API_VERSION
from ferry.server.services import ServerServices
from ferry.snapshot.blobstore.remote import RemoteBlobStore
from ferry.snapshot.digest import is_digest, new_hasher
from ferry.snapshot.errors import CorruptBlobError, MissingBlobError
from ferry.tracking.accounts import TokenRecord

router = APIRouter()
Svc = Depends(services)
User = Depends(require_user)
Admin = Depends(require_admin)
Anyone = Depends(principal)
_CHUNK = 1 << 20
#: longest a follower's folder request waits for news (seconds), and how often it looks
MAX_WAIT = 10.0
_WAIT_STEP = 0.01


class Sizes(BaseModel):
    sizes: dict[str, int] = Field(description="digest -> size in bytes")


class Digests(BaseModel):
    digests: list[str]


class NewUser(BaseModel):
    name: str
    admin: bool = False


class NewToken(BaseModel):
    user: str
    expires_in: float | None = Field(None, gt=0, le=10 * 365 * 86400)


def _digest(svc: ServerServices, digest: str) -> str:
    if not is_digest(digest, svc.blobs.algo):
        raise ConfigError(f"{digest[:80]!r} is not a {svc.blobs.algo} digest")
    return digest


# blobs ---------------------------------------------------------------------------------------
@router.post("/blobs/lacking", tags=["blobs"])
def lacking(body: Sizes, svc: ServerServices = Svc, _: TokenRecord = User) -> dict[str, list[str]]:
    sizes = {_digest(svc, d): s for d, s in body.sizes.items()}
    return {"lacking": sorted(svc.blobs.lacking(sizes))}


@router.post("/blobs/has", tags=["blobs"])
def has(body: Digests, svc: ServerServices = Svc, _: TokenRecord = User) -> dict[str, list[str]]:
    return {"present": sorted(svc.blobs.has([_digest(svc, d) for d in body.digests]))}


@router.put("/blobs/{digest}", tags=["blobs"], status_code=201)
async def put_blob(
    digest: str, request: Request, svc: ServerServices = Svc, _: TokenRecord = User
) -> dict[str, bool]:
    _digest(svc, digest)
    hasher = new_hasher(svc.blobs.algo)
    folder = svc.blobs.root / "tmp"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = folder / f"upload-{uuid.uuid4().hex}"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                hasher.update(chunk)
                out.write(chunk)
        if hasher.hexdigest() != digest:
            raise SnapshotError(
                f"the bytes sent do not hash to {digest}; nothing was stored (send the blob again)"
            )
        new = await run_in_threadpool(svc.blobs.put_file, temp, digest)
    finally:
        temp.unlink(missing_ok=True)
    return {"new": bool(new)}


@router.get("/blob-store/aside-mark", tags=["blobs"])
def aside_mark(svc: ServerServices = Svc, _: TokenRecord = User) -> dict[str, str]:
    """Changes whenever the server sets a corrupt blob aside (snapshotters then re-check)."""
    return {"mark": svc.blobs.aside_mark()}


@router.get("/blobs/{digest}", tags=["blobs"], response_class=FileResponse)
def get_blob(digest: str, svc: ServerServices = Svc, _: TokenRecord = User) -> FileResponse:
    """The blob, verified before it is sent: a corrupt one is set aside and refused (409).

    A bucket's blob is sent from this server's cache (downloaded and verified on the first
    request); a cached copy found damaged is set aside and downloaded again before anything
    is refused, since the bucket's may be intact."""
    digest = _digest(svc, digest)
    path = svc.blobs.path(digest)  # (a bucket's: fetched into the cache, verified on the way)
    if not path.is_file():
        raise MissingBlobError(digest)
    try:
        with svc.blobs.open(digest) as reader:  # CorruptBlobError (set aside) at the end
            while reader.read(_CHUNK):
                pass
    except CorruptBlobError:
        if not isinstance(svc.blobs, RemoteBlobStore):
            raise
        path = svc.blobs.path(digest)  # the cached copy was set aside: fetched again
    return FileResponse(path, media_type="application/octet-stream")


# run folders ---------------------------------------------------------------------------------
@router.get("/runs/{run_id}/folder", tags=["files"])
async def folder_state(
    run_id: str,
    wait: float = Query(0.0, ge=0.0, le=MAX_WAIT),
    known: str | None = Query(None, max_length=64),
    svc: ServerServices = Svc,
    who: TokenRecord = Anyone,
) -> dict[str, Any]:
    """The run's logs (their sizes) and whether its supervisor finished, with the state's
    ``mark``. A follower sends the last mark it saw as ``known`` and ``wait`` seconds: the
    answer then comes as soon as the folder differs from that state (or the wait is over), so
    a log line or the run's end reaches it within ~10 ms instead of a polling interval."""

    def first() -> dict[str, Any]:
        require_runs(svc, who, [run_id])
        return runfiles.folder_state(svc.workspace, run_id)

    state = await run_in_threadpool(first)
    mark = runfiles.state_mark(state)
    if known is not None and wait > 0:
        folder = svc.workspace.runs_dir / run_id
        deadline = time.monotonic() + wait
        while mark == known and time.monotonic() < deadline:
            await asyncio.sleep(_WAIT_STEP)
            state = runfiles.scan_folder(folder)  # a few stats of a local folder
            mark = runfiles.state_mark(state)
    return {**state, "mark": mark}


@router.get("/runs/{run_id}/log", tags=["files"], response_class=Response)
def read_log(
    run_id: str,
    name: str = Query(runfiles.LOG_NAME, max_length=200),
    offset: int = Query(0, ge=0, le=2**62),
    svc: ServerServices = Svc,
    who: TokenRecord = Anyone,
) -> Response:
    require_runs(svc, who, [run_id])
    data = runfiles.read_log(svc.workspace, run_id, name, offset)
    return Response(data, media_type="application/octet-stream")


@router.get("/runs/{run_id}/files/{name:path}", tags=["files"], response_class=FileResponse)
def get_file(
    run_id: str, name: str, svc: ServerServices = Svc, who: TokenRecord = Anyone
) -> FileResponse:
    require_runs(svc, who, [run_id])
    return FileResponse(
        runfiles.artifact_file(svc.workspace, run_id, name), media_type="application/octet-stream"
    )


@router.put("/runs/{run_id}/files/{name:path}", tags=["files"], status_code=201)
async def put_file(
    run_id: str, name: str, request: Request, svc: ServerServices = Svc, who: TokenRecord = Anyone
) -> dict[str, Any]:
    require_runs(svc, who, [run_id])
    return await save_upload(svc, run_id, name, request)


async def save_upload(
    svc: ServerServices, run_id: str, name: str, request: Request
) -> dict[str, Any]:
    """Spool the body (memory, then disk past 8 MiB) and keep it as the run's artifact."""
    with tempfile.SpooledTemporaryFile(max_size=8 << 20, dir=str(svc.workspace.cache_dir)) as spool:
        async for chunk in request.stream():
            spool.write(chunk)
        spool.seek(0)
        chunks = iter(lambda: spool.read(_CHUNK), b"")
        record = await run_in_threadpool(
            runfiles.save_artifact, svc.workspace, run_id, name, chunks
        )
    return {"name": record.name, "size": record.size}


@router.post("/runs/{run_id}/start", tags=["runs"])
def start_run(run_id: str, svc: ServerServices = Svc, who: TokenRecord = User) -> dict[str, bool]:
    """Queue a recorded run for the server's supervisors (the submitting client may leave)."""
    queued = svc.store.request_dispatch(run_id, who.user)
    svc.wake()
    return {"queued": queued}


# the server ----------------------------------------------------------------------------------
@router.get("/info", tags=["server"])
def info(svc: ServerServices = Svc, who: TokenRecord = Anyone) -> dict[str, Any]:
    return {
        "api_version": API_VERSION,
        "ferry_version": getattr(ferry, "__version__", "0"),
        "workspace": svc.workspace.name,
        "runs_dir": str(svc.workspace.runs_dir),
        "mlflow_tracking_uri": svc.config.url,
        "user": who.user,
        "admin": who.admin,
        "scope": who.scope,
    }


@router.post("/users", tags=["admin"])
def add_user(body: NewUser, svc: ServerServices = Svc, _: TokenRecord = Admin) -> dict[str, Any]:
    user = svc.store.add_user(body.name, admin=body.admin)
    return {"name": user.name, "admin": user.admin}


@router.get("/users", tags=["admin"])
def list_users(svc: ServerServices = Svc, _: TokenRecord = Admin) -> list[dict[str, Any]]:
    return [
        {"name": u.name, "admin": u.admin, "created_at": u.created_at}
        for u in svc.store.list_users()
    ]


@router.post("/tokens", tags=["admin"])
def create_token(
    body: NewToken, svc: ServerServices = Svc, _: TokenRecord = Admin
) -> dict[str, str]:
    return {"token": svc.store.create_token(body.user, expires_in=body.expires_in)}


@router.delete("/tokens/{token_id}", tags=["admin"])
def revoke_token(
    token_id: str, svc: ServerServices = Svc, _: TokenRecord = Admin
) -> dict[str, bool]:
    return {"revoked": svc.store.revoke_token(token_id)}
