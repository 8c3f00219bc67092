"""The SQLAlchemy run store: SQLite (WAL) by default, PostgreSQL for a team server.

The constructor is cheap: it builds nothing. The first use opens the database
(:mod:`ferry.tracking.database`: private file, schema checked and upgraded, unusable files
refused with a message); the writes themselves live in :mod:`ferry.tracking.rows`, shared by
the single-purpose methods and by :meth:`SqlRunStore.apply`. Every driver error becomes a
:class:`~ferry.errors.StoreError` naming the database.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ferry.errors import ConfigError, RunNotFound, StoreError
from ferry.status import RunStatus
from ferry.tracking import rows
from ferry.tracking import schema as t
from ferry.tracking.base import (
    AddArtifacts,
    AddProperties,
    ArtifactRecord,
    CreateRun,
    ExperimentRecord,
    MetricSeries,
    RemoveTags,
    RunQuery,
    RunRecord,
    RunStore,
    SetStatus,
    SetTags,
    StoreOp,
    op_run_ids,
    run_record,
)
from ferry.tracking.database import damaged_record, make_engine, translate
from ferry.tracking.search import RunPage, RunSearch
from ferry.tracking.search_sql import among

_OPS = (MetricSeries, SetTags, RemoveTags, AddProperties, AddArtifacts, CreateRun, SetStatus)


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
        return make_engine(self.url)

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
        """One write transaction (BEGIN IMMEDIATE on SQLite: writers queue, never 'locked')."""
        try:
            with self.engine.connect().execution_options(ferry_write=True) as conn, conn.begin():
                yield conn
        except sa.exc.DBAPIError as exc:
            raise translate(exc, self.url, "write") from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """A connection for reading. On PostgreSQL it reads in autocommit: each statement
        sees the data committed when it starts, as in a READ COMMITTED transaction, without
        the transaction's ROLLBACK round trip when the connection goes back to the pool."""
        try:
            with self.engine.connect() as conn:
                if conn.dialect.name == "postgresql":
                    conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                yield conn
        except sa.exc.DBAPIError as exc:
            raise translate(exc, self.url, "read") from exc
        except ValueError as exc:  # only decoding stored values raises it here
            raise damaged_record(self.url, exc) from exc

    # experiments -------------------------------------------------------------------------
    def ensure_experiment(self, name: str) -> None:
        c = t.experiments.c
        with self._read() as conn:  # the common case takes no write lock
            if conn.execute(sa.select(c.name).where(c.name == name)).first():
                return
        with self._write() as conn:
            rows.ensure_experiment(conn, name)

    def list_experiments(self) -> list[str]:
        c = t.experiments.c
        with self._read() as conn:
            found = conn.execute(
                sa.select(c.name).where(c.archived_time.is_(None)).order_by(c.name)
            )
            return [r[0] for r in found]

    def _experiments(self, conn: Connection, where: Any) -> list[ExperimentRecord]:
        c = t.experiments.c
        found = conn.execute(
            sa.select(c.name, c.id, c.created_at, c.archived_time).where(where).order_by(c.name)
        ).all()
        tag_map: dict[str, dict[str, str | None]] = {r.name: {} for r in found}
        if found:
            tc = t.experiment_tags.c
            for name, key, value in conn.execute(
                sa.select(tc.experiment, tc.key, tc.value).where(tc.experiment.in_(list(tag_map)))
            ):
                tag_map[name][key] = value
        return [
            ExperimentRecord(r.name, r.id, r.created_at, r.archived_time, tag_map[r.name])
            for r in found
        ]

    def find_experiment(self, name: str) -> ExperimentRecord | None:
        with self._read() as conn:
            found = self._experiments(conn, t.experiments.c.name == name)
        return found[0] if found else None

    def find_experiment_by_id(self, experiment_id: str) -> ExperimentRecord | None:
        with self._read() as conn:
            found = self._experiments(conn, t.experiments.c.id == experiment_id)
        return found[0] if found else None

    def list_experiment_records(self, *, archived: bool | None = False) -> list[ExperimentRecord]:
        c = t.experiments.c
        where: sa.ColumnElement[bool] = sa.true()
        if archived is not None:
            where = c.archived_time.is_not(None) if archived else c.archived_time.is_(None)
        with self._read() as conn:
            return self._experiments(conn, where)

    def set_experiment_archived(self, name: str, archived: bool) -> ExperimentRecord:
        c = t.experiments.c
        with self._write() as conn:
            stamp = sa.func.coalesce(c.archived_time, time.time()) if archived else None
            result = conn.execute(
                t.experiments.update()
                .where(c.name == name)
                .values(archived=archived, archived_time=stamp)
            )
            if not result.rowcount:
                raise _no_experiment(name)
            return self._experiments(conn, c.name == name)[0]

    def set_experiment_tags(self, name: str, tags: Mapping[str, str | None]) -> None:
        with self._write() as conn:
            if not _experiment_exists(conn, name):
                raise _no_experiment(name)
            rows.write_experiment_tags(conn, name, tags)

    def remove_experiment_tags(self, name: str, keys: Iterable[str]) -> None:
        keys = list(keys)
        c = t.experiment_tags.c
        with self._write() as conn:
            if not _experiment_exists(conn, name):
                raise _no_experiment(name)
            if keys:
                conn.execute(
                    t.experiment_tags.delete().where(c.experiment == name, c.key.in_(keys))
                )

    def delete_experiment(self, name: str) -> None:
        with self._write() as conn:
            if not _experiment_exists(conn, name):
                raise _no_experiment(name)
            rows.delete_experiment(conn, name)

    # runs --------------------------------------------------------------------------------
    def create_run(self, record: RunRecord) -> None:
        with self._write() as conn:
            rows.insert_run(conn, record)

    def _records(
        self,
        conn: Connection,
        found: Sequence[sa.Row[Any]],
        details: Sequence[tuple[Mapping[str, str | None], Mapping[str, str]]] | None = None,
    ) -> list[RunRecord]:
        """Records of ``runs`` rows; their tags and properties from ``details`` (one pair per
        row, read with them) or read here."""
        if not found:
            return []
        ids = [r.id for r in found]
        tag_map: dict[str, dict[str, str | None]] = {i: {} for i in ids}
        prop_map: dict[str, dict[str, str]] = {i: {} for i in ids}
        if details is not None:
            for run_id, (tags, props) in zip(ids, details, strict=True):
                tag_map[run_id], prop_map[run_id] = dict(tags), dict(props)
            ids = []  # nothing more to read
        for chunk_start in range(0, len(ids), 500):
            chunk = ids[chunk_start : chunk_start + 500]
            for run_id, key, value in conn.execute(
                sa.select(t.tags.c.run_id, t.tags.c.key, t.tags.c.value).where(
                    among(conn, t.tags.c.run_id, chunk)
                )
            ):
                tag_map[run_id][key] = value
            for run_id, key, value in conn.execute(
                sa.select(t.properties.c.run_id, t.properties.c.key, t.properties.c.value).where(
                    among(conn, t.properties.c.run_id, chunk)
                )
            ):
                prop_map[run_id][key] = value
        status = RunStatus._value2member_map_
        names = found[0]._fields
        records = []
        for row in found:  # one dict a row: a Row's attribute access costs more
            r = dict(zip(names, row, strict=False))
            run_id = r["id"]
            records.append(
                run_record(
                    {
                        "id": run_id,
                        "experiment": r["experiment"],
                        "status": status.get(r["status"]) or RunStatus(r["status"]),
                        "parent_id": r["parent_id"],
                        "target": r["target"],
                        "run_type": r["run_type"],
                        "display_name": r["display_name"],
                        "created_at": r["created_at"],
                        "start_time": r["start_time"],
                        "end_time": r["end_time"],
                        "heartbeat_at": r["heartbeat_at"],
                        "definition": r["definition"] or {},
                        "error": r["error"],
                        "timings": r["timings"] or {},
                        "snapshot": r["snapshot"],
                        "supervisor_pid": r["supervisor_pid"],
                        "job_pgid": r["job_pgid"],
                        "host": r["host"],
                        "run_dir": r["run_dir"],
                        "tags": tag_map[run_id],
                        "properties": prop_map[run_id],
                        "number": r["number"],
                        "description": r["description"],
                    }
                )
            )
        return records

    def get_run(self, run_id: str) -> RunRecord:
        """One statement (the run's tags and properties aggregated beside its row) where the
        database has JSON aggregates: a run is read several times in each of its processes."""
        with self._read() as conn:
            stmt = _run_with_details(conn.dialect)
            if stmt is None:
                found = conn.execute(sa.select(t.runs).where(t.runs.c.id == run_id)).all()
                details = None
            else:
                found = conn.execute(stmt, {"run_id": run_id}).all()
                details = [(_object(r._tags), _object(r._properties)) for r in found]
            if not found:
                raise RunNotFound(
                    f"no run {run_id!r} in this workspace; list runs with `ferry runs list`"
                )
            return self._records(conn, found, details)[0]

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
        expected: RunStatus | None = None,
    ) -> RunStatus:
        with self._write() as conn:
            return rows.compare_and_set_status(
                conn, run_id, status, error=error, at=at, expected=expected
            )

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
            "description",
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
        if tags:
            with self._write() as conn:
                rows.write_tags(conn, run_id, tags)

    def remove_tags(self, run_id: str, keys: Iterable[str]) -> None:
        keys = list(keys)
        if keys:
            with self._write() as conn:
                rows.delete_tags(conn, run_id, keys)

    def add_properties(self, run_id: str, properties: Mapping[str, str]) -> None:
        if properties:
            with self._write() as conn:
                rows.write_properties(conn, run_id, properties)

    # metrics and artifacts ---------------------------------------------------------------
    def log_series(self, series: Sequence[MetricSeries]) -> None:
        encoded = [rows.series_row(m) for m in series]
        if encoded:
            with self._write() as conn:
                rows.insert_series(conn, encoded)

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
        if artifacts:
            with self._write() as conn:
                rows.write_artifacts(conn, artifacts)

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
        with self._write() as conn:
            return rows.next_environment_version(conn, name, spec)

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

    # spool ingestion -----------------------------------------------------------------------
    def apply(
        self, ops: Sequence[StoreOp], *, cursor: tuple[str, Mapping[str, int]] | None = None
    ) -> list[str]:
        for op in ops:
            if not isinstance(op, _OPS):
                raise TypeError(f"not a store operation: {op!r}")
        encoded = [_encode(op) if isinstance(op, MetricSeries) else None for op in ops]
        warnings: list[str] = []
        with self._write() as conn:  # encoded before: the write lock is held for writes only
            wanted = [run_id for op in ops for run_id in op_run_ids(op)]
            known = rows.existing_run_ids(conn, wanted + ([cursor[0]] if cursor else []))
            series: list[dict[str, Any]] = []  # consecutive series go in one executemany
            for op, row in zip(ops, encoded, strict=True):
                missing = [run_id for run_id in op_run_ids(op) if run_id not in known]
                if missing:
                    warnings.append(f"{_describe(op)} skipped: no run {missing[0]!r}")
                elif isinstance(row, StoreError):
                    warnings.append(f"{_describe(op)} skipped: {row}")
                elif row is not None:
                    series.append(row)
                else:
                    rows.insert_series(conn, series)
                    series = []
                    try:
                        with conn.begin_nested():  # a refusal rolls back this op only
                            _apply_one(conn, op)
                    except (StoreError, ConfigError, sa.exc.IntegrityError) as exc:
                        reason = exc.orig if isinstance(exc, sa.exc.IntegrityError) else exc
                        warnings.append(f"{_describe(op)} skipped: {reason}")
                        continue
                    if isinstance(op, CreateRun):
                        known.add(op.record.id)
            rows.insert_series(conn, series)
            if cursor is not None:
                run_id, offsets = cursor
                if run_id not in known:
                    raise RunNotFound(f"no run {run_id!r} for the spool cursor; nothing was stored")
                rows.write_cursor(conn, run_id, offsets)
        return warnings

    # search --------------------------------------------------------------------------------
    def search_runs(self, search: RunSearch) -> RunPage:
        from ferry.tracking import search_sql

        with self._read() as conn:
            return search_sql.search(conn, search, self._records)

    def count_runs(self, search: RunSearch) -> int:
        """How many runs a search finds (every page): the UI's "1–50 of 100,000"."""
        from ferry.tracking import search_sql

        with self._read() as conn:
            return search_sql.count(conn, search)

    def count_children(self, run_ids: Sequence[str]) -> dict[str, int]:
        """{run id: how many child runs it has} (runs without children are left out)."""
        c = t.runs.c
        out: dict[str, int] = {}
        with self._read() as conn:
            for start in range(0, len(run_ids), 500):
                chunk = list(run_ids[start : start + 500])
                for parent, number in conn.execute(
                    sa.select(c.parent_id, sa.func.count())
                    .where(among(conn, c.parent_id, chunk))
                    .group_by(c.parent_id)
                ):
                    out[parent] = int(number)
        return out

    def experiment_activity(self) -> dict[str, tuple[int, int, float | None]]:
        """{experiment: (top-level runs, of them not ended, newest run's creation time)}."""
        c = t.runs.c
        ended = [s.value for s in RunStatus if s.is_terminal()]
        active = sa.func.sum(sa.case((c.status.not_in(ended), 1), else_=0))
        stmt = (
            sa.select(c.experiment, sa.func.count(), active, sa.func.max(c.created_at))
            .where(c.parent_id.is_(None))
            .group_by(c.experiment)
        )
        with self._read() as conn:
            return {
                name: (int(total), int(busy or 0), newest)
                for name, total, busy, newest in conn.execute(stmt)
            }

    def metric_names(self, run_id: str) -> list[tuple[str, str, int]]:
        """The run's metrics as (name, type, values logged), in first-logged order, without
        reading their values."""
        c = t.metrics.c
        stmt = (
            sa.select(c.name, c.type, sa.func.sum(c.count), sa.func.min(c.id))
            .where(c.run_id == run_id)
            .group_by(c.name, c.type)
            .order_by(sa.func.min(c.id))
        )
        with self._read() as conn:
            return [(name, kind, int(n)) for name, kind, n, _ in conn.execute(stmt)]

    def raw_series(
        self, run_ids: Sequence[str], name: str
    ) -> list[tuple[str, str, str, str | None]]:
        """One metric's stored batches as (run id, type, values JSON, steps JSON or None), in
        logging order, undecoded: a chart of a million values decodes them in one pass
        (:mod:`ferry.ui.charts`) rather than through a million Python records."""
        c = t.metrics.c
        stmt = (
            sa.select(c.run_id, c.type, c.values_json, c.steps_json)
            .where(c.run_id.in_(list(run_ids)), c.name == name)
            .order_by(c.id)
        )
        with self._read() as conn:
            return [(r, kind, v, st) for r, kind, v, st in conn.execute(stmt)]

    def recent_keys(self, experiments: Sequence[str], runs: int = 500) -> dict[str, list[str]]:
        """The metric, tag and property names of the newest ``runs`` top-level runs of the
        experiments (the UI's column chooser: reading every run's keys would scan them all)."""
        c = t.runs.c
        recent = (
            sa.select(c.id)
            .where(c.experiment.in_(list(experiments)), c.parent_id.is_(None))
            .order_by(c.created_at.desc())
            .limit(runs)
            .subquery()
        )
        out: dict[str, list[str]] = {}
        with self._read() as conn:
            for kind, table, column in (
                ("metrics", t.latest_metrics, "name"),
                ("tags", t.tags, "key"),
                ("params", t.properties, "key"),
            ):
                key = table.c[column]
                found = conn.execute(
                    sa.select(key).distinct().where(table.c.run_id.in_(sa.select(recent.c.id)))
                )
                out[kind] = sorted(str(k) for (k,) in found)
        return out

    def latest_metrics(self, run_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        from ferry.tracking import search_sql

        with self._read() as conn:
            return search_sql.latest_values(conn, run_ids)

    def get_spool_cursor(self, run_id: str) -> dict[str, int]:
        c = t.spool_cursors.c
        with self._read() as conn:
            found = conn.execute(sa.select(c.file, c.offset).where(c.run_id == run_id))
            return {name: int(offset) for name, offset in found}


def _experiment_exists(conn: Connection, name: str) -> bool:
    c = t.experiments.c
    return conn.execute(sa.select(c.name).where(c.name == name)).first() is not None


def _no_experiment(name: str) -> ConfigError:
    return ConfigError(
        f"there is no experiment {name!r} in this workspace; Experiment.list(ws, "
        "view_type=ViewType.All) lists them"
    )


def _encode(series: MetricSeries) -> dict[str, Any] | StoreError:
    try:
        return rows.series_row(series)
    except StoreError as exc:
        return exc


def _apply_one(conn: Connection, op: StoreOp) -> None:
    if isinstance(op, SetTags):
        rows.write_tags(conn, op.run_id, op.tags)
    elif isinstance(op, RemoveTags):
        rows.delete_tags(conn, op.run_id, list(op.keys))
    elif isinstance(op, AddProperties):
        rows.write_properties(conn, op.run_id, op.properties)
    elif isinstance(op, AddArtifacts):
        rows.write_artifacts(conn, op.artifacts)
    elif isinstance(op, CreateRun):
        rows.insert_run(conn, op.record)
    elif isinstance(op, SetStatus):
        rows.compare_and_set_status(conn, op.run_id, op.status, error=op.error, at=op.at)
    else:  # MetricSeries are batched by the caller
        raise TypeError(f"not a store operation: {op!r}")


def _describe(op: StoreOp) -> str:
    """How a warning names an op: its kind and what it touches."""
    if isinstance(op, MetricSeries):
        return f"metric {op.name!r} of run {op.run_id}"
    if isinstance(op, AddArtifacts):
        names = ", ".join(a.name for a in op.artifacts[:3])
        return f"artifacts {names} of run {op.artifacts[0].run_id if op.artifacts else '?'}"
    if isinstance(op, CreateRun):
        return f"creating run {op.record.id}"
    if isinstance(op, SetStatus):
        return f"status {op.status.value} of run {op.run_id}"
    return f"{type(op).__name__} of run {op.run_id}"


_RUN_WITH_DETAILS: dict[str, Any] = {}


def _run_with_details(dialect: sa.engine.Dialect) -> Any:
    """``SELECT runs.*, tags, properties`` of the run named ``:run_id``, built once per
    dialect; None where there is no JSON aggregate (SQLite before 3.38 may lack JSON1)."""
    name = dialect.name
    if name not in _RUN_WITH_DETAILS:
        if name == "postgresql":
            aggregate: Any = sa.func.json_object_agg
        elif name == "sqlite" and sqlite_has_json():
            aggregate = sa.func.json_group_object
        else:
            _RUN_WITH_DETAILS[name] = None
            return None

        def details(table: Any, label: str) -> Any:
            return (
                sa.select(aggregate(table.c.key, table.c.value))
                .where(table.c.run_id == t.runs.c.id)
                .scalar_subquery()
                .label(label)
            )

        _RUN_WITH_DETAILS[name] = sa.select(
            t.runs, details(t.tags, "_tags"), details(t.properties, "_properties")
        ).where(t.runs.c.id == sa.bindparam("run_id"))
    return _RUN_WITH_DETAILS[name]


def sqlite_has_json() -> bool:
    """SQLite has built JSON1 in since 3.38 (2022)."""
    import sqlite3

    return sqlite3.sqlite_version_info >= (3, 38)


def _object(value: Any) -> dict[str, Any]:
    """An aggregate's JSON object: text on SQLite, decoded on PostgreSQL, NULL over no rows."""
    if value is None:
        return {}
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value
