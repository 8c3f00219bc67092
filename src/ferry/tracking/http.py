"""The run-store contract over HTTP: a remote workspace's history, kept by ``ferry server``.

:class:`HttpRunStore` implements :class:`~ferry.tracking.base.RunStore` with one request per
method (the routes of :mod:`ferry.server.routes_store`), so every library call and CLI command
works the same on a server's workspace as on a folder. :class:`ServerConnection` is the one
place that speaks HTTP (httpx): it sends the token and the API version, and turns every
failure into a ferry error naming the server — unreachable (:class:`ServerUnavailable`, worth
retrying), a token refused (:class:`ServerAuthError`), a client too old or new, a refusal with
the server's reason.

Run folders: readers of a run (its log followed by ``wait_for_completion``, its files) read
the run's folder under the workspace. For a server's workspace that folder is a local copy,
brought up to date from the server whenever the run is read (:meth:`HttpRunStore.get_run`: the
logs' new bytes and the ``done`` marker) or its files are listed (the files that changed).
Files a driver keeps with a run (``run.upload_file``) are sent to the server when their index
entries are written.

Example::

    store = HttpRunStore(ServerConnection("https://ferry.example", token), mirror=Path("runs"))
    store.get_run("exp_1718000000_ab12cd34").status
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

import httpx

from ferry.errors import ConfigError, InvalidTransition, RunNotFound, SnapshotError, StoreError
from ferry.status import RunStatus
from ferry.tracking import wire
from ferry.tracking.base import (
    AddArtifacts,
    ArtifactRecord,
    ExperimentRecord,
    MetricSeries,
    RunQuery,
    RunRecord,
    RunStore,
    StoreOp,
)
from ferry.tracking.database import StoreUnavailable
from ferry.tracking.http_assets import HttpAssets
from ferry.tracking.search import RunPage, RunSearch

API_VERSION = 1
VERSION_HEADER = "Ferry-Api-Version"
_API = "/api/v1"
_RETRIES = (0.2, 0.5, 1.0)
_JSON = "application/json"


class ServerUnavailable(StoreUnavailable):
    """The server cannot be reached (down, wrong address, timed out): a retry may work."""


class ServerAuthError(ConfigError):
    """The server refused the token (missing, unknown, expired or revoked) or its scope."""


class ServerIncompatible(ConfigError):
    """The server speaks another version of ferry's API than this client."""


class ServerConnection:
    """One server, one token: requests with the headers every route needs, errors mapped.

    The httpx client is made on first use and again in a forked child (a connection pool
    must not be shared across a fork).
    """

    def __init__(self, url: str, token: str, *, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._client: httpx.Client | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the token
        return f"ServerConnection({self.url!r})"

    @property
    def client(self) -> httpx.Client:
        if self._client is None or self._pid != os.getpid():
            with self._lock:
                if self._client is None or self._pid != os.getpid():
                    self._client = httpx.Client(
                        base_url=self.url,
                        headers={
                            "Authorization": f"Bearer {self._token}",
                            VERSION_HEADER: str(API_VERSION),
                        },
                        timeout=httpx.Timeout(self._timeout, connect=10.0),
                        # https: the CA bundle, as httpx loads it; plain http has no
                        # certificate to check, and loading the bundle costs 25-80 ms
                        verify=self.url.startswith("https://"),
                    )
                    self._pid = os.getpid()
        return self._client

    def close(self) -> None:
        if self._client is not None and self._pid == os.getpid():
            self._client.close()
        self._client = None

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        content: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send a request; a failure is a ferry error (idempotent ones retried on a lost
        connection)."""
        sent_headers = dict(headers or {})
        if body is not None:
            content = encode_json(body)
            sent_headers["Content-Type"] = _JSON
        attempts = _RETRIES if method in ("GET", "HEAD") else ()
        for delay in (*attempts, None):
            try:
                response = self.client.request(
                    method, path, params=params, content=content, headers=sent_headers
                )
                break
            except httpx.TransportError as exc:
                if delay is None:
                    raise ServerUnavailable(
                        f"cannot reach the ferry server at {self.url} ({_reason(exc)}); check "
                        "that it runs (`ferry server`) and that the URL is right (`ferry login "
                        "URL` changes it)"
                    ) from exc
                time.sleep(delay)
        if response.status_code >= 400:
            raise self._error(response)
        return response

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """A JSON request to ferry's API (``path`` below ``/api/v1``); the decoded answer."""
        response = self.request(method, _API + path, body=body, params=params)
        try:
            return decode_json(response.content) if response.content else None
        except ValueError as exc:
            raise StoreError(
                f"the ferry server at {self.url} sent an answer that is not JSON"
            ) from exc

    def _error(self, response: httpx.Response) -> Exception:
        code, message = "", response.text[:500]
        data: Any = None
        try:
            data = response.json()
            if isinstance(data, dict):
                error = data.get("error")
                if isinstance(error, dict):
                    code, message = str(error.get("code", "")), str(error.get("message", ""))
                elif "message" in data:
                    code, message = str(data.get("error_code", "")), str(data["message"])
        except ValueError:
            pass
        status = response.status_code
        where = f"the ferry server at {self.url}"
        if code == "IncompatibleClient":
            return ServerIncompatible(f"{where}: {message}")
        if status == 401:
            return ServerAuthError(
                f"{where} refused the token: {message}. Log in again with `ferry login "
                f"{self.url}` (or set FERRY_TOKEN)"
            )
        if status == 403:
            return ServerAuthError(f"{where} refused: {message}")
        if code == "RunNotFound":
            return RunNotFound(message)
        if code in ("AssetNotFound", "AssetExists"):
            from ferry.tracking import assets

            kind: type[ConfigError] = getattr(assets, code)
            return kind(message)
        if code == "InvalidTransition":
            return InvalidTransition(message)
        if code == "CorruptBlobError":
            from ferry.snapshot.errors import CorruptBlobError

            digest = response.request.url.path.rsplit("/", 1)[-1]
            aside = (data.get("error") or {}).get("set_aside") if isinstance(data, dict) else None
            aside_at = f"{aside} on {self.url}" if aside else None
            return CorruptBlobError(digest, None, aside_at)
        if code == "MissingBlobError":
            from ferry.snapshot.errors import MissingBlobError

            return MissingBlobError(response.request.url.path.rsplit("/", 1)[-1], self.url)
        if code == "SnapshotError":
            return SnapshotError(message)
        if status == 413:
            return ConfigError(f"{where}: {message}")
        if status in (502, 503, 504):
            return ServerUnavailable(f"{where} is not available now ({status}): {message}")
        if status >= 500:
            return StoreError(f"{where} failed ({status}): {message}")
        if code in ("StoreError", "StoreUnavailable"):
            return StoreError(message)
        return ConfigError(message)


def _heartbeat_verdict(status: RunStatus, error: Mapping[str, Any] | None) -> bool:
    """A status change that only a heartbeat check makes (:mod:`ferry.liveness`, which always
    says which status it expects)."""
    if status == RunStatus.NOT_RESPONDING:
        return True
    inner = (error or {}).get("error")
    return (
        status == RunStatus.FAILED
        and isinstance(inner, dict)
        and inner.get("code") == "NotResponding"
    )


@functools.cache
def _pydantic_core() -> ModuleType | None:
    """pydantic-core when it is installed (with the server extra), else None: the one guarded
    import of the JSON fast paths below, made at the first body that wants it (~40 ms), never
    by ``import ferry``, and only once."""
    try:
        import pydantic_core
    except ImportError:
        return None
    return pydantic_core


def encode_json(body: Any, *, many: bool = False) -> bytes:
    """``body`` as JSON, NaN and infinities as Python's json writes them. With ``many``
    (thousands of plain numbers: a batch of metric values) through pydantic-core when it is
    installed, ~20x faster than json on lists of floats; its import is paid only then."""
    core = _pydantic_core() if many else None
    if core is not None:
        try:
            encoded: bytes = core.to_json(body, inf_nan_mode="constants")
        except ValueError:
            pass  # a value it cannot write: json says why, as for any body
        else:
            return encoded
    return json.dumps(body, allow_nan=True).encode()


#: answers at least this long are decoded by pydantic-core when it is installed
_LARGE_ANSWER = 16_384


def decode_json(data: bytes) -> Any:
    """An answer's JSON. A large one (a search page, a metric's values) through pydantic-core
    when it is installed: ~2x faster than json on a page of runs, the same values (NaN and
    infinities too); its import is paid only then."""
    core = _pydantic_core() if len(data) >= _LARGE_ANSWER else None
    if core is not None:
        return core.from_json(data)
    return json.loads(data)


def _plain_numbers(series: Sequence[MetricSeries]) -> bool:
    """Thousands of values, every one a float or an int (what both encoders write alike)."""
    if sum(len(s.values) for s in series) < 1000:
        return False
    number = (float, int)
    return all(
        type(v) in number
        for s in series
        for column in (s.values, s.steps or (), s.ts)
        for v in column
        if v is not None
    )


def _unencodable(series: MetricSeries) -> str | None:
    """Why the series' values cannot travel as JSON (None when they can)."""
    try:
        json.dumps(series.values, allow_nan=True)
    except (TypeError, ValueError) as exc:
        return str(exc)
    return None


def _reason(exc: httpx.TransportError) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


def _q(text: str) -> str:
    return quote(text, safe="")


class HttpRunStore(RunStore, HttpAssets):
    """The run history a ferry server keeps, through its REST API.

    ``mirror`` is the local folder holding copies of run folders (``<mirror>/<run id>``) and
    ``workspace_root`` the folder artifact paths are relative to (its parent by default).
    """

    #: a followed run's folder copy: the server holds each question this long for news, and
    #: the questions are this far apart at least (a log written in a tight loop)
    FOLLOW_WAIT = 2.0
    FOLLOW_EVERY = 0.02
    #: a follower stops when nobody has read its run for this long
    FOLLOW_IDLE = 30.0

    def __init__(self, connection: ServerConnection, mirror: Path | None = None) -> None:
        self.connection = connection
        self.mirror = mirror
        self._folder_locks: dict[str, threading.Lock] = {}
        self._followed: dict[str, float] = {}
        self._synced: dict[str, int] = {}  # how many times each run's copy was brought up
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"HttpRunStore({self.connection.url!r})"

    def _call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.connection.call(method, path, body, clean or None)

    # experiments -------------------------------------------------------------------------
    def ensure_experiment(self, name: str) -> None:
        self._call("POST", "/experiments/ensure", {"name": name})

    def list_experiments(self) -> list[str]:
        return list(self._call("GET", "/experiments/names"))

    def find_experiment(self, name: str) -> ExperimentRecord | None:
        found = self._call("GET", "/experiments/find", name=name)
        return wire.experiment_from_wire(found) if found else None

    def list_experiment_records(self, *, archived: bool | None = False) -> list[ExperimentRecord]:
        which = {False: "active", True: "archived", None: "all"}[archived]
        return [
            wire.experiment_from_wire(e) for e in self._call("GET", "/experiments", archived=which)
        ]

    def set_experiment_archived(self, name: str, archived: bool) -> ExperimentRecord:
        found = self._call("POST", "/experiments/archive", {"name": name, "archived": archived})
        return wire.experiment_from_wire(found)

    def set_experiment_tags(self, name: str, tags: Mapping[str, str | None]) -> None:
        self._call("POST", "/experiments/tags", {"name": name, "tags": dict(tags)})

    def remove_experiment_tags(self, name: str, keys: Iterable[str]) -> None:
        self._call("POST", "/experiments/untag", {"name": name, "keys": list(keys)})

    def delete_experiment(self, name: str) -> None:
        self._call("POST", "/experiments/delete", {"name": name})

    # runs --------------------------------------------------------------------------------
    def create_run(self, record: RunRecord) -> None:
        self._call("POST", "/runs", {"record": wire.run_to_wire(record)})

    def _local(self, record: RunRecord) -> RunRecord:
        """The record with its folder where readers on this machine find it."""
        if self.mirror is None or record.run_dir is None:
            return record
        from dataclasses import replace

        return replace(record, run_dir=str(self.mirror / record.id))

    def get_run(self, run_id: str) -> RunRecord:
        record = wire.run_from_wire(self._call("GET", f"/runs/{_q(run_id)}"))
        live = self.mirror is not None and not self._copied(run_id) and not self.sync_folder(run_id)
        if live and not record.status.is_terminal():
            self.follow(run_id)
        return self._local(record)

    def list_runs(self, query: RunQuery) -> list[RunRecord]:
        found = self._call("POST", "/runs/query", wire.query_to_wire(query))
        return [self._local(wire.run_from_wire(r)) for r in found]

    def set_status(
        self,
        run_id: str,
        status: RunStatus,
        *,
        error: Mapping[str, Any] | None = None,
        at: float | None = None,
        expected: RunStatus | None = None,
    ) -> RunStatus:
        if expected is not None and _heartbeat_verdict(status, error):
            # the server judges its supervisors' heartbeats (its clock, its interval): a
            # reader's verdict here becomes a fresh read, which applies the server's
            current = wire.run_from_wire(self._call("GET", f"/runs/{_q(run_id)}")).status
            raise InvalidTransition(
                f"run {run_id} is {current.value} as its server judges it; not moved to "
                f"{status.value} from here"
            )
        body = {
            "status": status.value,
            "error": dict(error) if error is not None else None,
            "at": at,
            "expected": expected.value if expected is not None else None,
        }
        answer = self._call("POST", f"/runs/{_q(run_id)}/status", body)
        return wire.status_from_wire(answer["status"])

    def update_run(self, run_id: str, **fields: Any) -> None:
        self._call("PATCH", f"/runs/{_q(run_id)}", {"fields": fields})

    # tags and properties -----------------------------------------------------------------
    def set_tags(self, run_id: str, tags: Mapping[str, str | None]) -> None:
        if tags:
            self._call("POST", f"/runs/{_q(run_id)}/tags", {"tags": dict(tags)})

    def remove_tags(self, run_id: str, keys: Iterable[str]) -> None:
        keys = list(keys)
        if keys:
            self._call("POST", f"/runs/{_q(run_id)}/untag", {"keys": keys})

    def add_properties(self, run_id: str, properties: Mapping[str, str]) -> None:
        if properties:
            self._call("POST", f"/runs/{_q(run_id)}/properties", {"properties": dict(properties)})

    # metrics and artifacts ---------------------------------------------------------------
    def log_series(self, series: Sequence[MetricSeries]) -> None:
        if not series:
            return
        body = {"series": [wire.series_to_wire(s) for s in series]}
        try:
            content = encode_json(body, many=_plain_numbers(series))
        except (TypeError, ValueError):
            content = None
        for one in series if content is None else ():
            reason = _unencodable(one)  # as the SQL store: a value JSON cannot hold stores nothing
            if reason is not None:
                raise StoreError(
                    f"metric {one.name!r} of run {one.run_id} has a value that cannot be stored "
                    f"({reason})"
                )
        if content is None:
            content = encode_json(body)
        self.connection.request(
            "POST", f"{_API}/metrics", content=content, headers={"Content-Type": _JSON}
        )

    def get_series(self, run_ids: Sequence[str], name: str | None = None) -> list[MetricSeries]:
        if not run_ids:
            return []
        found = self._call("POST", "/metrics/query", {"run_ids": list(run_ids), "name": name})
        return [wire.series_from_wire(s) for s in found]

    def latest_metrics(self, run_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        if not run_ids:
            return {}
        found: dict[str, dict[str, float]] = self._call(
            "POST", "/metrics/latest", {"run_ids": list(run_ids)}
        )
        return found

    def add_artifacts(self, artifacts: Sequence[ArtifactRecord]) -> None:
        if artifacts:
            self._send_files(artifacts)

    def list_artifacts(self, run_id: str) -> list[ArtifactRecord]:
        found = self._call("GET", f"/runs/{_q(run_id)}/artifact-index")
        records = [wire.artifact_from_wire(a) for a in found]
        if self.mirror is not None:
            self._fetch_files([r for r, a in zip(records, found, strict=True) if a.get("stored")])
        return records

    # compute targets and environments ----------------------------------------------------
    def save_target(self, name: str, kind: str, config: Mapping[str, Any]) -> None:
        self._call("PUT", f"/targets/{_q(name)}", {"kind": kind, "config": dict(config)})

    def get_target(self, name: str) -> tuple[str, dict[str, Any]] | None:
        found = self._call("GET", f"/targets/{_q(name)}")
        return (found["kind"], dict(found["config"])) if found else None

    def list_targets(self) -> dict[str, tuple[str, dict[str, Any]]]:
        found = self._call("GET", "/targets")
        return {name: (t["kind"], dict(t["config"])) for name, t in found.items()}

    def delete_target(self, name: str) -> bool:
        return bool(self._call("DELETE", f"/targets/{_q(name)}")["deleted"])

    def register_environment(self, name: str, spec: Mapping[str, Any]) -> int:
        return int(self._call("POST", f"/environments/{_q(name)}", {"spec": dict(spec)})["version"])

    def get_environment(self, name: str, version: int | None = None) -> tuple[int, dict[str, Any]]:
        found = self._call("GET", f"/environments/{_q(name)}", version=version)
        return int(found["version"]), dict(found["spec"])

    def list_environments(self) -> dict[str, list[int]]:
        return {k: list(v) for k, v in self._call("GET", "/environments").items()}

    # spool ingestion and search ----------------------------------------------------------
    def apply(
        self, ops: Sequence[StoreOp], *, cursor: tuple[str, Mapping[str, int]] | None = None
    ) -> list[str]:
        files = [a for op in ops if isinstance(op, AddArtifacts) for a in op.artifacts]
        if files:  # the files first: an index entry never names a file the server lacks
            self._send_files(files)
            ops = [op for op in ops if not isinstance(op, AddArtifacts)]
        if not ops and cursor is None:
            return []
        encoded = []
        for op in ops:
            reason = _unencodable(op) if isinstance(op, MetricSeries) else None
            encoded.append(
                wire.op_to_wire(op)
                if reason is None
                else wire.unstorable_series_to_wire(op, reason)  # type: ignore[arg-type]
            )
        body = {
            "ops": encoded,
            "cursor": {"run_id": cursor[0], "offsets": dict(cursor[1])} if cursor else None,
        }
        return list(self._call("POST", "/apply", body)["warnings"])

    def get_spool_cursor(self, run_id: str) -> dict[str, int]:
        return {k: int(v) for k, v in self._call("GET", f"/runs/{_q(run_id)}/cursor").items()}

    def search_runs(self, search: RunSearch) -> RunPage:
        body = {
            "experiments": list(search.experiments),
            "clauses": [
                {
                    "kind": c.kind,
                    "key": c.key,
                    "op": c.op,
                    "value": list(c.value) if isinstance(c.value, tuple) else c.value,
                }
                for c in search.clauses
            ],
            "order_by": [
                {"kind": o.kind, "key": o.key, "ascending": o.ascending} for o in search.order_by
            ],
            "limit": search.limit,
            "offset": search.offset,
            "top_level_only": search.top_level_only,
        }
        found = self._call("POST", "/runs/search", body)
        return RunPage(
            [self._local(wire.run_from_wire(r)) for r in found["runs"]],
            found["next_offset"],
            found["latest"],
        )

    def close(self) -> None:
        self._closing = True  # followers still waiting on the server leave quietly
        self.connection.close()

    # the run folders' copies ---------------------------------------------------------------
    def start_run(self, run_id: str) -> bool:
        """Queue a recorded run for the server's supervisors (and follow its folder: the
        submitter usually waits for it)."""
        queued = bool(self._call("POST", f"/runs/{_q(run_id)}/start")["queued"])
        if self.mirror is not None:
            self.follow(run_id)
        return queued

    def follow(self, run_id: str) -> None:
        """Keep this machine's copy of a live run's folder fresh (a daemon thread asking the
        server to answer when the folder changes) while someone reads the run, so a log line
        or the run's end shows up here within milliseconds, as in a local workspace."""
        with self._guard:
            running = run_id in self._followed
            self._followed[run_id] = time.monotonic()
        if not running:
            threading.Thread(
                target=self._follow, args=(run_id,), name=f"ferry-follow-{run_id}", daemon=True
            ).start()

    def _follow(self, run_id: str) -> None:
        mark: str | None = None
        try:
            while True:
                with self._guard:
                    idle = time.monotonic() - self._followed.get(run_id, 0.0)
                if idle > self.FOLLOW_IDLE:
                    break
                asked = time.monotonic()
                with self._guard:
                    generation = self._synced.get(run_id, 0)
                try:  # the wait is outside the folder's lock: readers are not held up
                    state = self._call(
                        "GET",
                        f"/runs/{_q(run_id)}/folder",
                        known=mark,
                        wait=self.FOLLOW_WAIT if mark is not None else None,
                    )
                    mark = state.get("mark")
                    if self.sync_folder(run_id, state, generation):
                        break
                except (StoreError, ConfigError):
                    break  # the next read says what is wrong
                except RuntimeError:  # the store was closed while the server was asked
                    if getattr(self, "_closing", False):
                        break
                    raise
                if getattr(self, "_closing", False):
                    break
                time.sleep(max(0.0, asked + self.FOLLOW_EVERY - time.monotonic()))
        finally:
            with self._guard:
                self._followed.pop(run_id, None)

    def _copied(self, run_id: str) -> bool:
        """This machine's copy of the run's folder is final (its done marker was copied
        after the logs, once the server's supervisor had finished)."""
        assert self.mirror is not None
        return (self.mirror / run_id / "done").exists()

    def sync_folder(
        self, run_id: str, state: Mapping[str, Any] | None = None, generation: int = -1
    ) -> bool:
        """Bring this machine's copy of the run's logs and done marker up to date; True once
        the run's supervisor has finished. ``state`` is an answer of the server asked for
        when the copy was at ``generation``: a copy brought further since then (by another
        reader) asks the server again, never goes back to an older state."""
        with self._guard:
            lock = self._folder_locks.setdefault(run_id, threading.Lock())
        with lock:
            with self._guard:
                if self._synced.get(run_id, 0) != generation:
                    state = None
                self._synced[run_id] = self._synced.get(run_id, 0) + 1
            return self._sync_folder(run_id, state)

    def _sync_folder(self, run_id: str, state: Mapping[str, Any] | None) -> bool:
        assert self.mirror is not None
        if state is None:
            state = self._call("GET", f"/runs/{_q(run_id)}/folder")
        folder = self.mirror / run_id
        for name, size in state["logs"].items():
            local = folder / name
            try:
                have = local.stat().st_size
            except FileNotFoundError:
                have = 0
            if size < have:  # the server's log was compacted: start the copy again
                local.unlink()
                have = 0
            while have < size:
                data = self.connection.request(
                    "GET", f"{_API}/runs/{_q(run_id)}/log", params={"name": name, "offset": have}
                ).content
                if not data:
                    break
                local.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                with os.fdopen(fd, "ab") as out:
                    out.write(data)
                have += len(data)
        if state["done"]:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            (folder / "done").touch()
        return bool(state["done"])

    def _root(self) -> Path:
        assert self.mirror is not None
        return self.mirror.parent

    def _fetch_files(self, records: Sequence[ArtifactRecord]) -> None:
        """Copy the run's files this machine lacks (or holds at another size)."""
        root = self._root()
        for record in records:
            local = root / record.path
            try:
                if local.stat().st_size == record.size:
                    continue
            except FileNotFoundError:
                pass
            local.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            temp = local.with_name(f".{local.name}.{os.getpid()}.part")
            path = f"{_API}/runs/{_q(record.run_id)}/files/{quote(record.name)}"
            with self.connection.client.stream("GET", path) as response:
                if response.status_code == 404:  # indexed, but no file on the server
                    continue
                if response.status_code >= 400:
                    response.read()
                    raise self.connection._error(response)
                with open(temp, "wb") as out:
                    for chunk in response.iter_bytes(1 << 20):
                        out.write(chunk)
            os.replace(temp, local)

    def _send_files(self, records: Sequence[ArtifactRecord]) -> None:
        """Send files kept on this machine to the server, which stores and indexes them;
        entries whose file is not here are indexed as given (their file is the server's)."""
        root = self.mirror.parent if self.mirror is not None else None
        here = [r for r in records if root is not None and (root / r.path).is_file()]
        sent = {id(r) for r in here}
        index_only = [r for r in records if id(r) not in sent]
        if index_only:
            artifacts = [wire.artifact_to_wire(a) for a in index_only]
            self._call("POST", "/artifacts", {"artifacts": artifacts})
        for record in here:
            assert root is not None
            local = root / record.path
            try:
                with open(local, "rb") as fh:
                    self.connection.request(
                        "PUT",
                        f"{_API}/runs/{_q(record.run_id)}/files/{quote(record.name)}",
                        content=iter(lambda: fh.read(1 << 20), b""),
                        headers={"Content-Type": "application/octet-stream"},
                    )
            except OSError as exc:
                raise StoreError(
                    f"cannot send {record.name} of run {record.run_id}: {exc.strerror}"
                ) from exc
