"""MLflow's tracking REST API (``/api/2.0/mlflow/…``) and its artifact proxy.

Each endpoint calls one function of :mod:`ferry.tracking.mlflow_api`; GET endpoints take their
arguments from the query string, the others from a JSON body, as MLflow's client sends them.
A run-scoped token (what a job gets in ``MLFLOW_TRACKING_TOKEN``) reaches its run, its
children and its experiment only. Artifacts live with the run (``mlflow-artifacts:/runs/<run
id>/artifacts/<name>``), so ``mlflow.log_artifact`` files are ferry artifacts of the run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response

from ferry.server import runfiles
from ferry.server.auth import Forbidden, principal, require_runs, services
from ferry.server.boundary import FerryJSON
from ferry.server.routes_files import save_upload
from ferry.server.services import ServerServices
from ferry.tracking import mlflow_api
from ferry.tracking.accounts import TokenRecord
from ferry.tracking.mlflow_api import MlflowError

PREFIX = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
router = APIRouter()
Svc = Depends(services)
Anyone = Depends(principal)

#: endpoints a run-scoped token may call, and where their run id is
_RUN_SCOPED = {
    "runs/get",
    "runs/update",
    "runs/log-metric",
    "runs/log-batch",
    "runs/log-parameter",
    "runs/set-tag",
    "runs/delete-tag",
    "runs/log-inputs",
    "runs/outputs",
    "metrics/get-history",
}


async def _arguments(request: Request, method: str) -> dict[str, Any]:
    if method == "GET":
        return dict(request.query_params)
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise MlflowError("MALFORMED_REQUEST", "the request body is not JSON") from None
    if not isinstance(body, dict):
        raise MlflowError("MALFORMED_REQUEST", "the request body must be a JSON object")
    return body


def _check(svc: ServerServices, who: TokenRecord, path: str, body: Mapping[str, Any]) -> None:
    if who.run_id is None:
        return
    if path in _RUN_SCOPED:
        require_runs(svc, who, [mlflow_api.run_id_of(body)])
        return
    if path == "runs/create":
        tags = {t.get("key"): t.get("value") for t in body.get("tags") or [] if isinstance(t, dict)}
        parent = tags.get("mlflow.parentRunId")
        if isinstance(parent, str):
            require_runs(svc, who, [parent])
            return
    if path == "experiments/get":
        own = svc.store.get_run(who.run_id)
        found = mlflow_api.find_experiment_by_id(svc.store, str(body.get("experiment_id") or ""))
        if found.name == own.experiment:
            return
    raise Forbidden(f"a token scoped to run {who.run_id} cannot call {path}")


def _route(path: str, method: str, handler: Callable[..., dict[str, Any]]) -> None:
    async def endpoint(
        request: Request, svc: ServerServices = Svc, who: TokenRecord = Anyone
    ) -> Response:
        body = await _arguments(request, method)

        def call() -> dict[str, Any]:
            _check(svc, who, path, body)
            if handler is mlflow_api.create_run:
                return mlflow_api.create_run(svc.store, body, user=who.user)
            if handler is mlflow_api.log_batch:
                return mlflow_api.log_batch(svc.store, body, mlflow_limits=True)
            return handler(svc.store, body)

        return FerryJSON(await run_in_threadpool(call))

    endpoint.__name__ = "mlflow_" + path.replace("/", "_").replace("-", "_")
    router.add_api_route(
        f"{PREFIX}/{path}", endpoint, methods=[method], tags=["mlflow"], summary=f"MLflow {path}"
    )


for _path, (_method, _handler) in mlflow_api.ENDPOINTS.items():
    _route(_path, _method, _handler)


# artifacts -----------------------------------------------------------------------------------
def _run_and_name(path: str) -> tuple[str, str]:
    parts = path.strip("/").split("/", 3)
    if len(parts) < 3 or parts[0] != "runs" or parts[2] != "artifacts":
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            f"artifact paths look like runs/<run id>/artifacts/<name>, not {path[:200]!r}",
        )
    return parts[1], parts[3] if len(parts) > 3 else ""


@router.get(ARTIFACTS, tags=["mlflow"], summary="MLflow list artifacts")
def list_artifacts(
    path: str = Query(""), svc: ServerServices = Svc, who: TokenRecord = Anyone
) -> Response:
    run_id, prefix = _run_and_name(path)
    require_runs(svc, who, [run_id])
    files = runfiles.list_artifacts(svc.workspace, run_id, prefix)
    for entry in files:
        entry["path"] = (
            entry["path"][len(prefix.strip("/")) :].lstrip("/") if prefix else entry["path"]
        )
    return FerryJSON({"files": files})


@router.get(ARTIFACTS + "/{path:path}", tags=["mlflow"], summary="MLflow download an artifact")
def download_artifact(
    path: str, svc: ServerServices = Svc, who: TokenRecord = Anyone
) -> FileResponse:
    run_id, name = _run_and_name(path)
    require_runs(svc, who, [run_id])
    return FileResponse(
        runfiles.artifact_file(svc.workspace, run_id, name), media_type="application/octet-stream"
    )


@router.put(ARTIFACTS + "/{path:path}", tags=["mlflow"], summary="MLflow upload an artifact")
async def upload_artifact(
    path: str, request: Request, svc: ServerServices = Svc, who: TokenRecord = Anyone
) -> Response:
    run_id, name = _run_and_name(path)
    require_runs(svc, who, [run_id])
    await save_upload(svc, run_id, name, request)
    return FerryJSON({})
