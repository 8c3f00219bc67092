"""The SQLAlchemy run store: SQLite (WAL) by default, PostgreSQL for a team server.

The constructor is cheap: it builds an engine and nothing else. The schema is checked (and
upgraded with Alembic when behind) on first use, with one query when it is current.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from ferry.errors import ConfigError, InvalidTransition, RunNotFound, StoreError
from ferry.status import RunStatus, can_transition
from ferry.tracking import schema as t
from ferry.tracking.base import ArtifactRecord, MetricSeries, RunQuery, RunRecord, RunStore

_BUSY_TIMEOUT_MS = 60_000


def _configure_sqlite(engine: Engine) -> None:
    """WAL, a long busy timeout and BEGIN IMMEDIATE for writers: many processes, no 'locked'."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("ferry_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class SqlRunStore(RunStore):
    """Run history in a SQL database reached through SQLAlchemy."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    # connection handling -----------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = self._make_engine()
        return self._engine

    def _make_engine(self) -> Engine:
        is_sqlite = self.url.startswith("sqlite")
        if is_sqlite:
            engine = sa.create_engine(self.url, connect_args={"timeout": _BUSY_TIMEOUT_MS / 1000})
            _configure_sqlite(engine)
        else:
            engine = sa.create_engine(self.url, pool_pre_ping=True)
        try:
            self._ensure_schema(engine)
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot open the run history at {self.url}: {exc.orig}") from exc
        return engine

    @staticmethod
    def _ensure_schema(engine: Engine) -> None:
        with engine.connect() as conn:
            current = None
            if sa.inspect(conn).has_table("alembic_version"):
                current = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            conn.rollback()
        if current == t.HEAD_REVISION:
            return
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        with engine.connect().execution_options(ferry_write=True) as conn, conn.begin():
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def after_fork(self) -> None:
        """Drop inherited connections in a forked child (never share a SQLite handle)."""
        if self._engine is not None:
            self._engine.dispose(close=False)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with self.engine.connect().execution_options(ferry_write=True) as conn, conn.begin():
                yield conn
        except sa.exc.IntegrityError as exc:
            raise StoreError(f"the run history refused a write: {exc.orig}") from exc
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot write the run history at {self.url}: {exc.orig}") from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot read the run history at {self.url}: {exc.orig}") from exc

    # experiments -------------------------------------------------------------------------
    def ensure_experiment(self, name: str) -> None:
        with self._read() as conn:
            if conn.execute(
                sa.select(t.experiments.c.name).where(t.experiments.c.name == name)
            ).first():
                return
        with self._write() as conn:
            if not conn.execute(
                sa.select(t.experiments.c.name).where(t.experiments.c.name == name)
            ).first():
                conn.execute(
                    t.experiments.insert().values(name=name, created_at=time.time(), archived=False)
                )

    def list_experiments(self) -> list[str]:
        with self._read() as conn:
            rows = conn.execute(sa.select(t.experiments.c.name).order_by(t.experiments.c.name))
            return [r[0] for r in rows]

    # runs --------------------------------------------------------------------------------
    def create_run(self, record: RunRecord) -> None:
        self.ensure_experiment(record.experiment)
        with self._write() as conn:
            conn.execute(
                t.runs.insert().values(
                    id=record.id,
                    experiment=record.experiment,
                    parent_id=record.parent_id,
                    status=record.status.value,
                    target=record.target,
                    run_type=record.run_type,
                    display_name=record.display_name,
                    created_at=record.created_at or time.time(),
                    start_time=record.start_time,
                    end_time=record.end_time,
                    heartbeat_at=record.heartbeat_at,
                    definition=dict(record.definition),
                    error=dict(record.error) if record.error else None,
                    timings=dict(record.timings),
                    snapshot=dict(record.snapshot) if record.snapshot else None,
                    supervisor_pid=record.supervisor_pid,
                    job_pgid=record.job_pgid,
                    host=record.host,
                    run_dir=record.run_dir,
                )
            )
            if record.tags:
                conn.execute(
                    t.tags.insert(),
                    [{"run_id": record.id, "key": k, "value": v} for k, v in record.tags.items()],
                )
            if record.properties:
                conn.execute(
                    t.properties.insert(),
                    [
                        {"run_id": record.id, "key": k, "value": v}
                        for k, v in record.properties.items()
                    ],
                )

    def _records(self, conn: Connection, rows: Sequence[sa.Row[Any]]) -> list[RunRecord]:
        if not rows:
            return []
        ids = [r.id for r in rows]
        tag_map: dict[str, dict[str, str | None]] = {i: {} for i in ids}
        prop_map: dict[str, dict[str, str]] = {i: {} for i in ids}
        for chunk_start in range(0, len(ids), 500):
            chunk = ids[chunk_start : chunk_start + 500]
            for run_id, key, value in conn.execute(
                sa.select(t.tags.c.run_id, t.tags.c.key, t.tags.c.value).where(
                    t.tags.c.run_id.in_(chunk)
                )
            ):
                tag_map[run_id][key] = value
            for run_id, key, value in conn.execute(
                sa.select(t.properties.c.run_id, t.properties.c.key, t.properties.c.value).where(
                    t.properties.c.run_id.in_(chunk)
                )
            ):
                prop_map[run_id][key] = value
        return [
            RunRecord(
                id=r.id,
                experiment=r.experiment,
                status=RunStatus(r.status),
                parent_id=r.parent_id,
                target=r.target,
                run_type=r.run_type,
                display_name=r.display_name,
                created_at=r.created_at,
                start_time=r.start_time,
                end_time=r.end_time,
                heartbeat_at=r.heartbeat_at,
                definition=r.definition or {},
                error=r.error,
                timings=r.timings or {},
                snapshot=r.snapshot,
                supervisor_pid=r.supervisor_pid,
                job_pgid=r.job_pgid,
                host=r.host,
                run_dir=r.run_dir,
                tags=tag_map[r.id],
                properties=prop_map[r.id],
            )
            for r in rows
        ]

    def get_run(self, run_id: str) -> RunRecord:
        with self._read() as conn:
            rows = conn.execute(sa.select(t.runs).where(t.runs.c.id == run_id)).all()
            if not rows:
                raise RunNotFound(
                    f"no run {run_id!r} in this workspace; list runs with `ferry runs list`"
                )
            return self._records(conn, rows)[0]

    def list_runs(self, query: RunQuery) -> list[RunRecord]:
        stmt = sa.select(t.runs)
        c = t.runs.c
        if query.experiment is not None:
            stmt = stmt.where(c.experiment == query.experiment)
        if query.parent_id is not None:
            stmt = stmt.where(c.parent_id == query.parent_id)
        if query.top_level_only:
            stmt = stmt.where(c.parent_id.is_(None))
        if query.statuses:
            stmt = stmt.where(c.status.in_([s.value for s in query.statuses]))
        for key, value in (query.tags or {}).items():
            sub = sa.select(t.tags.c.run_id).where(t.tags.c.key == key)
            if value is not None:
                sub = sub.where(t.tags.c.value == value)
            stmt = stmt.where(c.id.in_(sub))
        for key, value in (query.properties or {}).items():
            psub = sa.select(t.properties.c.run_id).where(t.properties.c.key == key)
            if value is not None:
                psub = psub.where(t.properties.c.value == value)
            stmt = stmt.where(c.id.in_(psub))
        stmt = stmt.order_by(c.created_at.desc(), c.id.desc())
        if query.limit is not None:
            stmt = stmt.limit(query.limit)
        with self._read() as conn:
            return self._records(conn, conn.execute(stmt).all())

    def set_status(
        self,
        run_id: str,
        status: RunStatus,
        *,
        error: Mapping[str, Any] | None = None,
        at: float | None = None,
    ) -> RunStatus:
        now = at if at is not None else time.time()
        with self._write() as conn:
            row = conn.execute(
                sa.select(t.runs.c.status, t.runs.c.start_time).where(t.runs.c.id == run_id)
            ).first()
            if row is None:
                raise RunNotFound(f"no run {run_id!r} in this workspace")
            current = RunStatus(row.status)
            if not can_transition(current, status):
                raise InvalidTransition(
                    f"run {run_id} cannot move from {current.value} to {status.value}"
                )
            values: dict[str, Any] = {"status": status.value}
            if status == RunStatus.RUNNING and row.start_time is None:
                values["start_time"] = now
            if status.is_terminal():
                values["end_time"] = now
            if error is not None:
                values["error"] = dict(error)
            conn.execute(t.runs.update().where(t.runs.c.id == run_id).values(**values))
            return status

    _UPDATABLE = frozenset(
        {
            "heartbeat_at",
            "timings",
            "snapshot",
            "supervisor_pid",
            "job_pgid",
            "host",
            "run_dir",
            "definition",
            "display_name",
            "error",
            "start_time",
        }
    )

    def update_run(self, run_id: str, **fields: Any) -> None:
        unknown = set(fields) - self._UPDATABLE
        if unknown:
            raise StoreError(f"cannot update run columns {sorted(unknown)}")
        with self._write() as conn:
            result = conn.execute(t.runs.update().where(t.runs.c.id == run_id).values(**fields))
            if result.rowcount == 0:
                raise RunNotFound(f"no run {run_id!r} in this workspace")

    # tags and properties -----------------------------------------------------------------
    def set_tags(self, run_id: str, tags: Mapping[str, str | None]) -> None:
        if not tags:
            return
        with self._write() as conn:
            conn.execute(
                t.tags.delete().where(t.tags.c.run_id == run_id, t.tags.c.key.in_(list(tags)))
            )
            conn.execute(
                t.tags.insert(), [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()]
            )

    def remove_tags(self, run_id: str, keys: Iterable[str]) -> None:
        keys = list(keys)
        if keys:
            with self._write() as conn:
                conn.execute(
                    t.tags.delete().where(t.tags.c.run_id == run_id, t.tags.c.key.in_(keys))
                )

    def add_properties(self, run_id: str, properties: Mapping[str, str]) -> None:
        if not properties:
            return
        with self._write() as conn:
            existing = dict(
                conn.execute(
                    sa.select(t.properties.c.key, t.properties.c.value).where(
                        t.properties.c.run_id == run_id,
                        t.properties.c.key.in_(list(properties)),
                    )
                ).all()
            )
            new = {}
            for key, value in properties.items():
                if key in existing:
                    if existing[key] != value:
                        raise ConfigError(
                            f"property {key!r} of run {run_id} is already {existing[key]!r}; "
                            "properties are immutable (use a tag for values that change)"
                        )
                else:
                    new[key] = value
            if new:
                conn.execute(
                    t.properties.insert(),
                    [{"run_id": run_id, "key": k, "value": v} for k, v in new.items()],
                )

    # metrics and artifacts ---------------------------------------------------------------
    def log_series(self, series: Sequence[MetricSeries]) -> None:
        if not series:
            return
        rows = [
            {
                "run_id": m.run_id,
                "name": m.name,
                "type": m.type,
                "description": m.description,
                "count": len(m.values),
                "values_json": json.dumps(m.values),
                "steps_json": None if m.steps is None else json.dumps(m.steps),
                "ts_json": json.dumps(m.ts),
            }
            for m in series
        ]
        with self._write() as conn:
            conn.execute(t.metrics.insert(), rows)

    def get_series(self, run_ids: Sequence[str], name: str | None = None) -> list[MetricSeries]:
        if not run_ids:
            return []
        c = t.metrics.c
        out: list[MetricSeries] = []
        with self._read() as conn:
            for start in range(0, len(run_ids), 500):
                stmt = (
                    sa.select(
                        c.run_id,
                        c.name,
                        c.type,
                        c.values_json,
                        c.steps_json,
                        c.ts_json,
                        c.description,
                    )
                    .where(c.run_id.in_(list(run_ids[start : start + 500])))
                    .order_by(c.id)
                )
                if name is not None:
                    stmt = stmt.where(c.name == name)
                for run_id, mname, typ, values, steps, ts, desc in conn.execute(stmt):
                    out.append(
                        MetricSeries(
                            run_id,
                            mname,
                            typ,
                            json.loads(values),
                            None if steps is None else json.loads(steps),
                            json.loads(ts),
                            desc,
                        )
                    )
        return out

    def add_artifacts(self, artifacts: Sequence[ArtifactRecord]) -> None:
        if not artifacts:
            return
        with self._write() as conn:
            for a in artifacts:
                conn.execute(
                    t.artifacts.delete().where(
                        t.artifacts.c.run_id == a.run_id, t.artifacts.c.name == a.name
                    )
                )
            conn.execute(
                t.artifacts.insert(),
                [
                    {"run_id": a.run_id, "name": a.name, "path": a.path, "size": a.size}
                    for a in artifacts
                ],
            )

    def list_artifacts(self, run_id: str) -> list[ArtifactRecord]:
        c = t.artifacts.c
        with self._read() as conn:
            rows = conn.execute(
                sa.select(c.run_id, c.name, c.path, c.size)
                .where(c.run_id == run_id)
                .order_by(c.name)
            )
            return [ArtifactRecord(*row) for row in rows]

    # compute targets and environments ----------------------------------------------------
    def save_target(self, name: str, kind: str, config: Mapping[str, Any]) -> None:
        with self._write() as conn:
            conn.execute(t.compute_targets.delete().where(t.compute_targets.c.name == name))
            conn.execute(
                t.compute_targets.insert().values(
                    name=name, kind=kind, config=dict(config), created_at=time.time()
                )
            )

    def get_target(self, name: str) -> tuple[str, dict[str, Any]] | None:
        c = t.compute_targets.c
        with self._read() as conn:
            row = conn.execute(sa.select(c.kind, c.config).where(c.name == name)).first()
            return (row.kind, dict(row.config)) if row else None

    def list_targets(self) -> dict[str, tuple[str, dict[str, Any]]]:
        c = t.compute_targets.c
        with self._read() as conn:
            rows = conn.execute(sa.select(c.name, c.kind, c.config).order_by(c.name))
            return {r.name: (r.kind, dict(r.config)) for r in rows}

    def delete_target(self, name: str) -> bool:
        with self._write() as conn:
            result = conn.execute(
                t.compute_targets.delete().where(t.compute_targets.c.name == name)
            )
            return bool(result.rowcount)

    def register_environment(self, name: str, spec: Mapping[str, Any]) -> int:
        c = t.environments.c
        with self._write() as conn:
            latest = conn.execute(sa.select(sa.func.max(c.version)).where(c.name == name)).scalar()
            version = (latest or 0) + 1
            conn.execute(
                t.environments.insert().values(
                    name=name, version=version, spec=dict(spec), created_at=time.time()
                )
            )
            return version

    def get_environment(self, name: str, version: int | None = None) -> tuple[int, dict[str, Any]]:
        c = t.environments.c
        with self._read() as conn:
            stmt = sa.select(c.version, c.spec).where(c.name == name)
            if version is not None:
                stmt = stmt.where(c.version == version)
            row = conn.execute(stmt.order_by(c.version.desc()).limit(1)).first()
            if row is None:
                versions = [v for (v,) in conn.execute(sa.select(c.version).where(c.name == name))]
                known = f"known versions: {versions}" if versions else "it is not registered"
                raise ConfigError(
                    f"no environment {name!r}"
                    + (f" version {version}" if version is not None else "")
                    + f"; {known}"
                )
            return row.version, dict(row.spec)

    def list_environments(self) -> dict[str, list[int]]:
        c = t.environments.c
        out: dict[str, list[int]] = {}
        with self._read() as conn:
            for name, version in conn.execute(
                sa.select(c.name, c.version).order_by(c.name, c.version)
            ):
                out.setdefault(name, []).append(version)
        return out
