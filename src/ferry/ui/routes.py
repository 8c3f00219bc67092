"""The studio's HTTP routes: read models under ``/api/v1/ui``, live events, the pages.

Mounted by :func:`ferry.server.app.create_app` for ``ferry server`` and ``ferry ui`` alike (one
app, one auth: every ``/api`` route needs a token; the pages and their assets hold no data and
need none). The contract with the pages is ``docs/ui-api.md``.

Live updates are server-sent events (:func:`events`): the run's status row when it changes, new
bytes of the followed log, the names of metrics that grew, then ``end``. The stream looks at the
run folder every 0.1 s (a few ``stat`` calls) and at the database every 0.5 s or when the folder
changed, so a printed line reaches the page in well under a second without polling from the page.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from ferry.errors import ConfigError, RunNotFound
from ferry.server import runfiles
from ferry.server.auth import require_runs, require_user, services
from ferry.server.boundary import FerryJSON
from ferry.server.services import ServerServices
from ferry.status import RunStatus
from ferry.tracking.accounts import TokenRecord
from ferry.ui import charts, runpage, views

STATIC = Path(__file__).parent / "static"
#: the page paths the single-page app routes itself (each answers index.html)
PAGES = ("/", "/experiments/{name:path}", "/runs", "/runs/{run_id}", "/compare", "/signin")
_FOLDER_STEP = 0.1
_STORE_STEP = 0.5
_PING = 15.0
_LOG_CHUNK = 256 << 10
#: how long an ended run's stream waits for its supervisor's done marker (the last log bytes)
_SETTLE = 3.0
#: a run's child count and what it was counted for (its status and tags)
_Children = tuple[tuple[RunStatus, dict[str, str | None]], int]

router = APIRouter(prefix="/ui", tags=["ui"])
Svc = Depends(services)
User = Depends(require_user)


class RunsBody(BaseModel):
    experiment: str | None = Field(None, max_length=255)
    filter: str = Field("", max_length=10_000)
    order_by: list[str] = Field(default_factory=list, max_length=10)
    offset: int = Field(0, ge=0, le=2**31)
    limit: int = Field(50, ge=1, le=1000)
    parent: str | None = Field(None, max_length=300)
    top_level_only: bool = True


class CompareSeries(BaseModel):
    runs: list[str] = Field(max_length=views.MAX_COMPARE)
    name: str = Field(max_length=500)
    points: int = Field(charts.DEFAULT_POINTS, ge=2, le=charts.MAX_POINTS)


class TagsBody(BaseModel):
    set: dict[str, str] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)


def _json(data: Any) -> FerryJSON:
    return FerryJSON(data)


@router.get("/info")
def info(request: Request, svc: ServerServices = Svc, who: TokenRecord = User) -> dict[str, Any]:
    from importlib.metadata import version

    local = getattr(request.app.state, "local_token", None) is not None
    return {
        "mode": "local" if local else "server",
        "workspace": str(svc.workspace.path) if local else svc.config.url,
        "user": who.user,
        "version": version("ferry"),
    }


@router.get("/experiments")
def experiments(svc: ServerServices = Svc, _: TokenRecord = User) -> FerryJSON:
    return _json({"experiments": views.experiments(svc.store)})


@router.post("/runs")
def runs(body: RunsBody, svc: ServerServices = Svc, _: TokenRecord = User) -> FerryJSON:
    query = views.RunsQuery(
        experiment=body.experiment,
        filter=body.filter,
        order_by=tuple(body.order_by),
        offset=body.offset,
        limit=body.limit,
        parent=body.parent,
        top_level_only=body.top_level_only,
    )
    return _json(views.runs_page(svc.store, query))


@router.get("/runs/{run_id}")
def run(
    request: Request, run_id: str, svc: ServerServices = Svc, _: TokenRecord = User
) -> FerryJSON:
    portal = str(request.base_url).rstrip("/") + f"/runs/{run_id}"
    return _json(runpage.run_page(svc, run_id, portal))


@router.get("/runs/{run_id}/metrics/{name:path}")
def metric(
    run_id: str,
    name: str,
    points: int = Query(charts.DEFAULT_POINTS, ge=2, le=charts.MAX_POINTS),
    svc: ServerServices = Svc,
    _: TokenRecord = User,
) -> FerryJSON:
    svc.store.get_run(run_id)
    fast = charts.fast_chart(svc.store.raw_series([run_id], name), name, points)
    if fast is not None:
        return _json(fast)
    return _json(charts.chart(svc.store.get_series([run_id], name), name, points))


@router.post("/metrics/compare")
def compare_metric(
    body: CompareSeries, svc: ServerServices = Svc, _: TokenRecord = User
) -> FerryJSON:
    ids = list(dict.fromkeys(body.runs))
    for run_id in ids:
        svc.store.get_run(run_id)
    raw = svc.store.raw_series(ids, body.name)
    out = []
    for run_id in ids:
        mine = [b for b in raw if b[0] == run_id and b[1] == "scalar"]
        xy: Any = charts.fast_line(mine)
        if xy is None:  # values that are not plain numbers: the general reader
            xy = charts.line(
                [s for s in svc.store.get_series([run_id], body.name) if s.type == "scalar"]
            )
        if xy is None or not len(xy[1]):
            continue
        out.append({"run_id": run_id, **charts.thin(xy[0], xy[1], body.points)})
    return _json({"name": body.name, "series": out})


@router.get("/runs/{run_id}/log")
def log(
    run_id: str,
    name: str = Query(runfiles.LOG_NAME, max_length=200),
    offset: int = Query(0, ge=-1, le=2**62),
    limit: int = Query(runpage.DEFAULT_LOG_PAGE, ge=1, le=runpage.MAX_LOG_PAGE),
    svc: ServerServices = Svc,
    _: TokenRecord = User,
) -> FerryJSON:
    return _json(runpage.log_page(svc, run_id, name, offset, limit))


@router.get("/runs/{run_id}/file")
def file(
    run_id: str,
    name: str = Query(max_length=1000),
    limit: int = Query(runpage.DEFAULT_FILE_VIEW, ge=1, le=runpage.MAX_FILE_VIEW),
    svc: ServerServices = Svc,
    _: TokenRecord = User,
) -> FerryJSON:
    return _json(runpage.file_view(svc, run_id, name, limit))


@router.get("/runs/{run_id}/snapshot")
def snapshot(run_id: str, svc: ServerServices = Svc, _: TokenRecord = User) -> FerryJSON:
    return _json(runpage.snapshot_files(svc, run_id))


@router.get("/runs/{run_id}/snapshot/file")
def snapshot_file(
    run_id: str,
    path: str = Query(max_length=4096),
    limit: int = Query(runpage.DEFAULT_FILE_VIEW, ge=1, le=runpage.MAX_FILE_VIEW),
    svc: ServerServices = Svc,
    _: TokenRecord = User,
) -> FerryJSON:
    return _json(runpage.snapshot_file(svc, run_id, path, limit))


@router.get("/compare")
def compare(
    runs: str = Query(max_length=20_000), svc: ServerServices = Svc, _: TokenRecord = User
) -> FerryJSON:
    return _json(views.compare(svc.store, runs.split(",")))


@router.get("/diff")
def diff(
    a: str = Query(max_length=300),
    b: str = Query(max_length=300),
    svc: ServerServices = Svc,
    _: TokenRecord = User,
) -> FerryJSON:
    return _json(runpage.diff(svc, a, b))


@router.get("/runs/{run_id}/sweep")
def sweep(run_id: str, svc: ServerServices = Svc, _: TokenRecord = User) -> FerryJSON:
    return _json(views.sweep(svc.store, run_id))


# actions -----------------------------------------------------------------------------------
@router.post("/runs/{run_id}/cancel")
def cancel(run_id: str, svc: ServerServices = Svc, who: TokenRecord = User) -> dict[str, Any]:
    from ferry.experiment import Experiment
    from ferry.run import Run

    require_runs(svc, who, [run_id])
    record = svc.store.get_run(run_id)
    Run(Experiment(svc.workspace, record.experiment), run_id).cancel()
    return {"status": svc.store.get_run(run_id).status.value}


@router.post("/runs/{run_id}/rerun")
def rerun(
    request: Request, run_id: str, svc: ServerServices = Svc, who: TokenRecord = User
) -> dict[str, Any]:
    from ferry.experiment import Experiment
    from ferry.run import Run
    from ferry.submit import rerun as submit_again

    record = svc.store.get_run(run_id)
    original = Run(Experiment(svc.workspace, record.experiment), run_id)
    local = getattr(request.app.state, "local_token", None) is not None
    start: Callable[[str], object] | None = None
    if not local:  # the server's supervisors take it, as a client's submit

        def start(new_id: str) -> None:
            svc.store.request_dispatch(new_id, who.user)
            svc.wake()

    new = submit_again(original, start=start)
    return {"run_id": new.id}


@router.post("/runs/{run_id}/tags")
def tags(
    run_id: str, body: TagsBody, svc: ServerServices = Svc, who: TokenRecord = User
) -> dict[str, Any]:
    for key in [*body.set, *body.remove]:
        if not key.strip() or len(key) > 255:
            raise ConfigError(f"a tag name is 1 to 255 characters, not {key!r}")
    if body.set:
        svc.store.set_tags(run_id, body.set)
    if body.remove:
        svc.store.remove_tags(run_id, body.remove)
    return {"tags": svc.store.get_run(run_id).tags}


# live events -------------------------------------------------------------------------------
@router.get("/runs/{run_id}/events")
async def events(
    request: Request,
    run_id: str,
    log: str | None = Query(None, max_length=200),
    offset: int = Query(0, ge=0, le=2**62),
    svc: ServerServices = Svc,
    _: TokenRecord = User,
) -> Response:
    from sse_starlette.sse import EventSourceResponse

    await run_in_threadpool(svc.read_run, run_id)  # RunNotFound before the stream starts
    if log is not None and not runfiles.is_run_log(log):
        raise ConfigError(f"{log!r} is not a run log (user_logs/std_log*.txt)")
    return EventSourceResponse(
        _follow(request, svc, run_id, log, offset), ping=int(_PING), send_timeout=30
    )


async def _follow(
    request: Request, svc: ServerServices, run_id: str, log: str | None, offset: int
) -> AsyncIterator[dict[str, str]]:
    folder = svc.workspace.runs_dir / run_id
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    sent_row: dict[str, Any] | None = None
    counts: list[tuple[str, str, int]] | None = None
    mark = ""
    next_store = 0.0
    ended_at: float | None = None  # when the run was first seen ended
    children: _Children | None = None
    while not await request.is_disconnected():
        state = runfiles.scan_folder(folder)
        new_mark = runfiles.state_mark(state)
        now = time.monotonic()
        if new_mark != mark or now >= next_store:
            mark, next_store = new_mark, now + _STORE_STEP
            record = await run_in_threadpool(_state_of, svc, run_id, children)
            if record is None:
                yield {"event": "gone", "data": json.dumps({"run_id": run_id})}
                return
            row, names, children = record
            if row != sent_row:
                sent_row = row
                yield {"event": "status", "data": json.dumps(row)}
            if counts is not None and names != counts:
                grown = sorted({n for (n, k, c) in names if (n, k, c) not in counts})
                yield {"event": "metrics", "data": json.dumps({"names": grown})}
            counts = names
        if log is not None:
            size = int(state["logs"].get(log, 0))
            while offset < size:
                data = await run_in_threadpool(
                    runfiles.read_log, svc.workspace, run_id, log, offset
                )
                data = data[:_LOG_CHUNK]
                if not data:
                    break
                # a character cut by the chunk's end is held back for the next chunk
                text = decoder.decode(data)
                event = {"name": log, "offset": offset, "next_offset": offset + len(data)}
                yield {"event": "log", "data": json.dumps({**event, "text": text})}
                offset += len(data)
        if sent_row is not None and sent_row["terminal"]:  # an ended run stays ended
            if ended_at is None:
                ended_at = time.monotonic()
            if (
                state["done"]
                or not sent_row["supervised"]
                or time.monotonic() - ended_at > _SETTLE  # its supervisor died: no marker comes
            ):
                final = runfiles.scan_folder(folder)
                if log is None or offset >= int(final["logs"].get(log, 0)):
                    yield {"event": "end", "data": "{}"}
                    return
        await asyncio.sleep(_FOLDER_STEP)


def _state_of(
    svc: ServerServices, run_id: str, children: _Children | None
) -> tuple[dict[str, Any], list[tuple[str, str, int]], _Children] | None:
    """The run's status row and metric counts, read on every look. Its children are counted
    again only when its status or tags changed (a sweep tags its parent with each child it
    starts), not every half second per open stream."""
    try:
        record = svc.read_run(run_id)
    except RunNotFound:
        return None
    latest = svc.store.latest_metrics([run_id]).get(run_id, {})
    counted_for = (record.status, dict(record.tags))
    if children is None or children[0] != counted_for:
        children = (counted_for, svc.store.count_children([run_id]).get(run_id, 0))
    row = views.row(record, latest, children[1])
    # no supervisor ever (an interactive run, a run MLflow's client made): no done marker comes
    row["supervised"] = record.supervisor_pid is not None
    return row, svc.store.metric_names(run_id), children


# the pages ---------------------------------------------------------------------------------
def index() -> HTMLResponse:
    """The single-page app (no data in it: the page asks the API with its token)."""
    try:
        html = (STATIC / "index.html").read_text(encoding="utf-8")
    except FileNotFoundError:
        html = "<!doctype html><title>ferry</title><p>The ferry UI's files are missing from this install."
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


def static_file(path: str) -> Response:
    """An asset of the app from the package (never outside its folder)."""
    root = STATIC.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise RunNotFound(f"no UI file {path!r}")
    return FileResponse(target, headers={"Cache-Control": "no-cache"})


def install_pages(app: Any) -> None:
    """The page paths and ``/static``; call after every API router is included."""
    for page in PAGES:
        app.add_api_route(page, index, methods=["GET"], include_in_schema=False)
    app.add_api_route("/static/{path:path}", static_file, methods=["GET"], include_in_schema=False)
    not_found = app.router.default

    async def pages_or_not_found(scope: Scope, receive: Receive, send: Send) -> None:
        """Any other page path is the app, which shows its own "not found" page; an unknown
        API path stays a JSON 404 (and a route asked with another method, a 405)."""
        path = str(scope.get("path", ""))
        if (
            scope["type"] == "http"
            and scope.get("method") in ("GET", "HEAD")
            and not path.startswith(("/api/", "/static/", "/ajax-api/"))
        ):
            await index()(scope, receive, send)
            return
        await not_found(scope, receive, send)

    app.router.default = pages_or_not_found
