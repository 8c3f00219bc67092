"""ferry's MLflow tracking-store plugin: ``mlflow`` logging into a workspace without a server.

Registered for MLflow's ``ferry`` URI scheme (entry point ``mlflow.tracking_store``). It is
MLflow's own REST store with the HTTP call replaced by an in-process call of the same functions
the server's MLflow routes use (:mod:`ferry.tracking.mlflow_api`), so the answers are the same:

- ``ferry:///path/to/workspace`` (``Workspace.get_mlflow_tracking_uri()`` of a folder): the
  workspace's run history, read and written directly;
- ``ferry:job`` (what ferry sets in ``MLFLOW_TRACKING_URI`` inside a run of a folder
  workspace): the job's spool, like every other record a job writes — metrics, params (as
  properties) and tags of its run. MLflow's status updates never end the run, and questions
  a job cannot answer (searches, metric history) are refused with the reason.

Artifacts go to the run's folder (``file://…/runs/<id>/artifacts`` from a driver; the job's
``./outputs`` inside a job, which ferry keeps as ``outputs/…``).

Example::

    mlflow.set_tracking_uri(ws.get_mlflow_tracking_uri())   # ferry:///home/me/ws
    with mlflow.start_run(experiment_id=…): mlflow.log_metric("loss", 0.3)
"""

from __future__ import annotations

import getpass
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from mlflow.exceptions import MlflowException
from mlflow.protos import databricks_pb2
from mlflow.store.tracking.rest_store import RestStore
from mlflow.utils.proto_json_utils import parse_dict
from mlflow.utils.rest_utils import MlflowHostCreds

from ferry.errors import ConfigError, FerryError
from ferry.status import RunStatus
from ferry.tracking import mlflow_api
from ferry.tracking.base import (
    AddArtifacts,
    AddProperties,
    ArtifactRecord,
    ExperimentRecord,
    MetricSeries,
    RemoveTags,
    RunQuery,
    RunRecord,
    RunStore,
    SetTags,
    StoreOp,
)

_PREFIX = "/api/2.0/mlflow/"
JOB_URI = "ferry:job"


class FerryTrackingStore(RestStore):
    """MLflow's tracking store over a ferry run store, in this process."""

    def __init__(self, store_uri: str | None = None, artifact_uri: str | None = None) -> None:
        uri = store_uri or JOB_URI
        # MLflow reads a REST store's host (to print a run's link); ours is the ferry URI
        super().__init__(lambda: MlflowHostCreds(uri))  # type: ignore[no-untyped-call]
        self._store, self._artifacts = _backend(uri)

    def _call_endpoint(  # MLflow's one seam: every API call passes here
        self,
        api: Any,
        json_body: str | None = None,
        endpoint: str | None = None,
        retry_timeout_seconds: float | None = None,
        response_proto: Any = None,
    ) -> Any:
        path, _method = self._METHOD_TO_INFO[api]
        key = path.split(_PREFIX, 1)[-1]
        found = mlflow_api.ENDPOINTS.get(key)
        if found is None:
            raise MlflowException(
                f"ferry's MLflow store does not implement {key}",
                error_code=databricks_pb2.ENDPOINT_NOT_FOUND,
            )
        body = json.loads(json_body) if json_body else {}
        try:
            if found[1] is mlflow_api.create_run:
                answer = mlflow_api.create_run(self._store, body, user=_user())
            else:
                answer = found[1](self._store, body)
        except FerryError as exc:
            error = mlflow_api.mlflow_error(exc)
            raise MlflowException(
                str(exc),
                error_code=getattr(databricks_pb2, error.code, databricks_pb2.INTERNAL_ERROR),
            ) from exc
        self._local_artifacts(answer)
        response = response_proto or api.Response()
        parse_dict(answer, response)  # type: ignore[no-untyped-call]
        return response

    def _local_artifacts(self, answer: dict[str, Any]) -> None:
        infos = [answer.get("run_info")] + [
            run.get("info") for run in [answer.get("run"), *answer.get("runs", [])] if run
        ]
        for info in infos:
            if isinstance(info, dict) and "run_id" in info:
                info["artifact_uri"] = self._artifacts(info["run_id"])


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return ""


def _backend(uri: str) -> tuple[RunStore, Any]:
    """The run store and artifact location a ``ferry:`` URI names."""
    parsed = urlparse(uri)
    if parsed.scheme != "ferry":
        raise MlflowException(f"{uri!r} is not a ferry tracking URI (ferry:///<workspace>)")
    if uri.rstrip("/") == JOB_URI or (parsed.path in ("job", "/job") and not parsed.netloc):
        store = JobSpoolStore.from_environment()
        outputs = os.environ.get("FERRY_OUTPUT_DIR") or os.path.abspath("outputs")
        return store, lambda _run_id: Path(outputs).as_uri()
    from ferry.workspace import Workspace

    ws = Workspace(path=unquote(parsed.path))
    return ws.store, lambda run_id: (ws.runs_dir / run_id / "artifacts").as_uri()


class JobSpoolStore(RunStore):
    """What a job may do with MLflow: write its run's records to the spool, read its own id.

    The supervisor ingests the spool (as for ``run.log``), checking every record. Anything a job
    cannot answer without the run history is refused with a :class:`ConfigError`.
    """

    def __init__(self, run_id: str, experiment: str, spool_dir: str) -> None:
        from ferry.runtime.spool import SpoolWriter

        self.run_id = run_id
        self.experiment = experiment
        self.writer = SpoolWriter(spool_dir)
        self.started = time.time()

    @classmethod
    def from_environment(cls) -> JobSpoolStore:
        run_id, spool = os.environ.get("FERRY_RUN_ID"), os.environ.get("FERRY_SPOOL_DIR")
        if not run_id or not spool:
            raise MlflowException(
                "MLFLOW_TRACKING_URI=ferry:job works inside a ferry run only; outside one use "
                "ws.get_mlflow_tracking_uri()"
            )
        return cls(run_id, os.environ.get("FERRY_EXPERIMENT", ""), spool)

    def _refuse(self, what: str) -> ConfigError:
        return ConfigError(
            f"{what} is not available inside a ferry job through MLflow; read it from the "
            "driver (ws.get_mlflow_tracking_uri()) or with ferry's Run API"
        )

    # what a job can answer -----------------------------------------------------------------
    def get_run(self, run_id: str) -> RunRecord:
        if run_id != self.run_id:
            raise self._refuse(f"run {run_id}")
        return RunRecord(
            id=run_id,
            experiment=self.experiment,
            status=RunStatus.RUNNING,
            created_at=self.started,
            start_time=self.started,
        )

    def find_experiment(self, name: str) -> ExperimentRecord | None:
        return ExperimentRecord(name, name, 0.0) if name == self.experiment else None

    def list_experiment_records(self, *, archived: bool | None = False) -> list[ExperimentRecord]:
        return [ExperimentRecord(self.experiment, self.experiment, 0.0)]

    def latest_metrics(self, run_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        return {run_id: {} for run_id in run_ids}

    def update_run(self, run_id: str, **fields: Any) -> None:
        """The run's name stays the driver's; nothing else is MLflow's to change."""

    def apply(
        self, ops: Sequence[StoreOp], *, cursor: tuple[str, Mapping[str, int]] | None = None
    ) -> list[str]:
        now = time.time()
        for op in ops:
            if isinstance(op, MetricSeries):
                steps = op.steps or [None] * len(op.values)
                for value, step, at in zip(op.values, steps, op.ts, strict=False):
                    self.writer.write(
                        {
                            "k": "metric",
                            "run": op.run_id,
                            "ts": at or now,
                            "name": op.name,
                            "type": "scalar",
                            "value": value,
                            "step": step,
                            "desc": "",
                        }
                    )
            elif isinstance(op, SetTags):
                self.writer.write({"k": "tags", "run": op.run_id, "ts": now, "set": dict(op.tags)})
            elif isinstance(op, AddProperties):
                self.writer.write(
                    {"k": "props", "run": op.run_id, "ts": now, "set": dict(op.properties)}
                )
            elif isinstance(op, RemoveTags):
                self.writer.write(
                    {"k": "untag", "run": op.run_id, "ts": now, "keys": list(op.keys)}
                )
            else:
                raise self._refuse(type(op).__name__)
        return []

    def remove_tags(self, run_id: str, keys: Iterable[str]) -> None:
        self.apply([RemoveTags(run_id, tuple(keys))])

    # what it cannot --------------------------------------------------------------------------
    def ensure_experiment(self, name: str) -> None:
        raise self._refuse("creating experiments")

    def list_experiments(self) -> list[str]:
        return [self.experiment]

    def set_experiment_archived(self, name: str, archived: bool) -> ExperimentRecord:
        raise self._refuse("archiving experiments")

    def set_experiment_tags(self, name: str, tags: Mapping[str, str | None]) -> None:
        raise self._refuse("experiment tags")

    def remove_experiment_tags(self, name: str, keys: Iterable[str]) -> None:
        raise self._refuse("experiment tags")

    def delete_experiment(self, name: str) -> None:
        raise self._refuse("deleting experiments")

    def create_run(self, record: RunRecord) -> None:
        raise self._refuse("creating runs (use ferry's run.child_run())")

    def list_runs(self, query: RunQuery) -> list[RunRecord]:
        raise self._refuse("searching runs")

    def set_status(self, run_id: str, status: RunStatus, **_: Any) -> RunStatus:
        raise self._refuse("changing a run's status")

    def set_tags(self, run_id: str, tags: Mapping[str, str | None]) -> None:
        self.apply([SetTags(run_id, tags)])

    def add_properties(self, run_id: str, properties: Mapping[str, str]) -> None:
        self.apply([AddProperties(run_id, properties)])

    def log_series(self, series: Sequence[MetricSeries]) -> None:
        self.apply(list(series))

    def get_series(self, run_ids: Sequence[str], name: str | None = None) -> list[MetricSeries]:
        raise self._refuse("metric history")

    def add_artifacts(self, artifacts: Sequence[ArtifactRecord]) -> None:
        self.apply([AddArtifacts(tuple(artifacts))])

    def list_artifacts(self, run_id: str) -> list[ArtifactRecord]:
        raise self._refuse("listing files")

    def save_target(self, name: str, kind: str, config: Mapping[str, Any]) -> None:
        raise self._refuse("compute targets")

    def get_target(self, name: str) -> tuple[str, dict[str, Any]] | None:
        raise self._refuse("compute targets")

    def list_targets(self) -> dict[str, tuple[str, dict[str, Any]]]:
        raise self._refuse("compute targets")

    def delete_target(self, name: str) -> bool:
        raise self._refuse("compute targets")

    def register_environment(self, name: str, spec: Mapping[str, Any]) -> int:
        raise self._refuse("environments")

    def get_environment(self, name: str, version: int | None = None) -> tuple[int, dict[str, Any]]:
        raise self._refuse("environments")

    def list_environments(self) -> dict[str, list[int]]:
        raise self._refuse("environments")

    def get_spool_cursor(self, run_id: str) -> dict[str, int]:
        raise self._refuse("spool cursors")
