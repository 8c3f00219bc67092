"""The writes behind the store, on a connection inside a transaction the caller owns.

:class:`~ferry.tracking.sql.SqlRunStore` calls them one per transaction for its single-purpose
methods, and many per transaction (each in a savepoint) for :meth:`~ferry.tracking.sql.
SqlRunStore.apply`; so a write means the same thing on either path. Every check that can be
raced is done by the database, not by a read before the write: a status change is a
compare-and-set (``UPDATE … WHERE status = :current``), a new experiment is an insert that
ignores a concurrent one, a version number is retried on a unique-key conflict. That holds on
SQLite (whose writers are serialised anyway) and on PostgreSQL under READ COMMITTED.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ferry.errors import ConfigError, InvalidTransition, RunNotFound, StoreError
from ferry.status import RunStatus, can_transition
from ferry.tracking import schema as t
from ferry.tracking.base import ArtifactRecord, MetricSeries, RunRecord
from ferry.tracking.search import Latest, latest_value

#: compare-and-set attempts when the status moved between our read and our update
STATUS_ATTEMPTS = 5
#: version attempts: each lost one means another writer committed a version meanwhile
VERSION_ATTEMPTS = 200
#: rows per multi-row INSERT … VALUES (SQLite and PostgreSQL cap the parameters of a statement)
_CHUNK = 500


def _chunks(rows: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), _CHUNK):
        yield rows[start : start + _CHUNK]


def _insert(conn: Connection, table: sa.Table) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (SQLite and PostgreSQL both do)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def insert_ignore(conn: Connection, table: sa.Table, row: Mapping[str, Any]) -> bool:
    """Insert ``row`` unless its key exists (even if a concurrent writer just added it)."""
    stmt = _insert(conn, table).values(**row).on_conflict_do_nothing()
    if not conn.dialect.insert_returning:  # SQLite before 3.35, whose rowcount is exact
        return bool(conn.execute(stmt).rowcount)
    # RETURNING, not rowcount: psycopg's rowcount of an INSERT does not reach SQLAlchemy
    return conn.execute(stmt.returning(*table.primary_key.columns)).first() is not None


def ensure_experiment(conn: Connection, name: str) -> None:
    insert_ignore(
        conn,
        t.experiments,
        {
            "name": name,
            "id": str(uuid.uuid4()),
            "created_at": time.time(),
            "archived": False,
            "next_run_number": 0,
        },
    )


def next_run_number(conn: Connection, experiment: str) -> int:
    """Take the experiment's next run number. The UPDATE locks the experiment's row until the
    transaction ends (PostgreSQL) or runs under the database's write lock (SQLite), so two
    runs created at once never take the same number."""
    c = t.experiments.c
    conn.execute(
        t.experiments.update()
        .where(c.name == experiment)
        .values(next_run_number=c.next_run_number + 1)
    )
    number = conn.execute(sa.select(c.next_run_number).where(c.name == experiment)).scalar_one()
    return int(number)


def existing_run_ids(conn: Connection, run_ids: Iterable[str]) -> set[str]:
    ids = list(dict.fromkeys(run_ids))
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        found.update(conn.execute(sa.select(t.runs.c.id).where(t.runs.c.id.in_(chunk))).scalars())
    return found


def insert_run(conn: Connection, record: RunRecord) -> None:
    """Create a run (and its experiment); an id that exists is refused with a StoreError."""
    ensure_experiment(conn, record.experiment)
    row = {
        "id": record.id,
        "experiment": record.experiment,
        "parent_id": record.parent_id,
        "status": record.status.value,
        "target": record.target,
        "run_type": record.run_type,
        "display_name": record.display_name,
        "created_at": record.created_at or time.time(),
        "start_time": record.start_time,
        "end_time": record.end_time,
        "heartbeat_at": record.heartbeat_at,
        "definition": dict(record.definition),
        "error": dict(record.error) if record.error else None,
        "timings": dict(record.timings),
        "snapshot": dict(record.snapshot) if record.snapshot else None,
        "supervisor_pid": record.supervisor_pid,
        "job_pgid": record.job_pgid,
        "host": record.host,
        "run_dir": record.run_dir,
        "description": record.description,
    }
    if not insert_ignore(conn, t.runs, row):
        raise StoreError(f"a run {record.id!r} exists already; run ids are never reused")
    number = next_run_number(conn, record.experiment)
    conn.execute(t.runs.update().where(t.runs.c.id == record.id).values(number=number))
    if record.tags:
        write_tags(conn, record.id, record.tags)
    if record.properties:
        write_properties(conn, record.id, record.properties)


def compare_and_set_status(
    conn: Connection,
    run_id: str,
    status: RunStatus,
    *,
    error: Mapping[str, Any] | None = None,
    at: float | None = None,
    expected: RunStatus | None = None,
) -> RunStatus:
    """Move a run to ``status`` with ``UPDATE … WHERE status = <the status just read>``.

    Zero rows changed means another writer moved the run in between: read again and re-check
    the table (under READ COMMITTED each statement sees the latest committed status).
    """
    runs = t.runs.c
    now = at if at is not None else time.time()
    for _attempt in range(STATUS_ATTEMPTS):
        row = conn.execute(sa.select(runs.status, runs.start_time).where(runs.id == run_id)).first()
        if row is None:
            raise RunNotFound(f"no run {run_id!r} in this workspace")
        current = RunStatus(row.status)
        if expected is not None and current != expected:
            raise InvalidTransition(
                f"run {run_id} is {current.value}, not {expected.value}; "
                f"it was not moved to {status.value}"
            )
        if not can_transition(current, status):
            raise InvalidTransition(
                f"run {run_id} cannot move from {current.value} to {status.value}"
            )
        values: dict[str, Any] = {"status": status.value}
        if status == RunStatus.RUNNING and row.start_time is None:
            values["start_time"] = now
        if status.is_terminal() and current != status:
            values["end_time"] = now
        if error is not None:
            values["error"] = dict(error)
        result = conn.execute(
            t.runs.update().where(runs.id == run_id, runs.status == current.value).values(**values)
        )
        if result.rowcount == 1:
            return status
    raise InvalidTransition(
        f"run {run_id}'s status kept changing while moving it to {status.value}; try again"
    )


def write_tags(conn: Connection, run_id: str, tags: Mapping[str, str | None]) -> None:
    for chunk in _chunks([{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()]):
        stmt = _insert(conn, t.tags).values(chunk)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[t.tags.c.run_id, t.tags.c.key],
                set_={"value": stmt.excluded.value},
            )
        )


def delete_tags(conn: Connection, run_id: str, keys: Sequence[str]) -> None:
    if keys:
        conn.execute(t.tags.delete().where(t.tags.c.run_id == run_id, t.tags.c.key.in_(keys)))


def write_properties(conn: Connection, run_id: str, properties: Mapping[str, str]) -> None:
    """Add properties; one already set to another value refuses the whole call (ConfigError)."""
    if not properties:
        return
    c = t.properties.c
    for key, value in properties.items():
        if insert_ignore(conn, t.properties, {"run_id": run_id, "key": key, "value": value}):
            continue
        stored = conn.execute(
            sa.select(c.value).where(c.run_id == run_id, c.key == key)
        ).scalar_one()
        if stored != value:
            raise ConfigError(
                f"property {key!r} of run {run_id} is already {stored!r}; "
                "properties are immutable (use a tag for values that change)"
            )


def series_row(series: MetricSeries) -> dict[str, Any]:
    """One metric_series row (columnar JSON); a value JSON cannot hold is a StoreError."""
    try:
        return {
            "run_id": series.run_id,
            "name": series.name,
            "type": series.type,
            "description": series.description,
            "count": len(series.values),
            "values_json": _json_list(series.values),
            "steps_json": None if series.steps is None else _json_list(series.steps),
            "ts_json": _json_list(series.ts),
            "latest": latest_value(series),
        }
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"metric {series.name!r} of run {series.run_id} has a value that cannot be stored "
            f"({exc})"
        ) from exc


def _json_list(values: Sequence[Any]) -> str:
    """A list as json writes it; thousands of plain numbers (a batch from a server's client)
    through pydantic-core when it is installed, ~20x faster on floats, the same numbers."""
    if len(values) >= 1000 and all(type(v) in (float, int) for v in values):
        try:
            from pydantic_core import to_json
        except ImportError:
            pass
        else:
            return to_json(values, inf_nan_mode="constants").decode()
    return json.dumps(values)


def insert_series(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert encoded series in one executemany (the hot path of ingestion), and fold their
    last numeric values into ``latest_metrics``."""
    if rows:
        conn.execute(
            t.metrics.insert(), [{k: v for k, v in row.items() if k != "latest"} for row in rows]
        )
        write_latest(conn, rows)


def write_latest(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Upsert each (run, metric)'s latest value; an older (step, time) never replaces a newer."""
    merged: dict[tuple[str, str], Latest] = {}
    for row in rows:
        found = row.get("latest")
        if found is None:
            continue
        key = (row["run_id"], row["name"])
        old = merged.get(key)
        if old is None or found[:2] >= old[:2]:
            merged[key] = found
    c = t.latest_metrics.c
    values = [
        {"run_id": r, "name": n, "step": s, "ts": at, "value": v}
        for (r, n), (s, at, v) in merged.items()
    ]
    for chunk in _chunks(values):
        stmt = _insert(conn, t.latest_metrics).values(chunk)
        new = stmt.excluded
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[c.run_id, c.name],
                set_={"value": new.value, "step": new.step, "ts": new.ts},
                where=(new.step > c.step) | ((new.step == c.step) & (new.ts >= c.ts)),
            )
        )


def write_artifacts(conn: Connection, artifacts: Sequence[ArtifactRecord]) -> None:
    """Index artifacts; a name already indexed for a run is replaced (the file was rewritten)."""
    latest = {(a.run_id, a.name): a for a in artifacts}  # the last entry of a name wins
    rows = [
        {"run_id": a.run_id, "name": a.name, "path": a.path, "size": a.size}
        for a in latest.values()
    ]
    for chunk in _chunks(rows):
        stmt = _insert(conn, t.artifacts).values(chunk)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[t.artifacts.c.run_id, t.artifacts.c.name],
                set_={"path": stmt.excluded.path, "size": stmt.excluded.size},
            )
        )


def write_cursor(conn: Connection, run_id: str, offsets: Mapping[str, int]) -> None:
    rows = [{"run_id": run_id, "file": name, "offset": int(pos)} for name, pos in offsets.items()]
    for chunk in _chunks(rows):
        stmt = _insert(conn, t.spool_cursors).values(chunk)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[t.spool_cursors.c.run_id, t.spool_cursors.c.file],
                set_={"offset": stmt.excluded.offset},
            )
        )


def next_environment_version(conn: Connection, name: str, spec: Mapping[str, Any]) -> int:
    """Store ``spec`` as the next version of ``name``; a version taken meanwhile is retried.

    The primary key (name, version) is the arbiter: under READ COMMITTED two writers may read
    the same maximum, and the second insert fails; it is rolled back to its savepoint and the
    maximum read again (now including the winner's version).
    """
    c = t.environments.c
    for _attempt in range(VERSION_ATTEMPTS):
        latest = conn.execute(sa.select(sa.func.max(c.version)).where(c.name == name)).scalar()
        version = int(latest or 0) + 1
        try:
            with conn.begin_nested():
                conn.execute(
                    t.environments.insert().values(
                        name=name, version=version, spec=dict(spec), created_at=time.time()
                    )
                )
        except sa.exc.IntegrityError:
            continue
        return version
    raise StoreError(
        f"could not allocate a version of environment {name!r}: {VERSION_ATTEMPTS} concurrent "
        "registrations won the race; try again"
    )


def write_experiment_tags(conn: Connection, name: str, tags: Mapping[str, str | None]) -> None:
    c = t.experiment_tags.c
    for chunk in _chunks([{"experiment": name, "key": k, "value": v} for k, v in tags.items()]):
        stmt = _insert(conn, t.experiment_tags).values(chunk)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[c.experiment, c.key], set_={"value": stmt.excluded.value}
            )
        )


def delete_experiment(conn: Connection, name: str) -> None:
    """Delete an experiment without runs (its tags with it); refuse one that has runs.

    The delete itself says "only if no run names it", so a run created meanwhile wins on
    SQLite (writers are serialised); on PostgreSQL the run's foreign key makes the delete fail
    instead, which is refused the same way.
    """
    runs = t.runs.c
    count_runs = sa.select(sa.func.count()).select_from(t.runs).where(runs.experiment == name)
    if not conn.execute(count_runs).scalar_one():
        no_runs = ~sa.exists().where(runs.experiment == name)
        savepoint = conn.begin_nested()  # the tags come back if the experiment stays
        try:
            conn.execute(t.experiment_tags.delete().where(t.experiment_tags.c.experiment == name))
            deleted = conn.execute(
                t.experiments.delete().where(t.experiments.c.name == name, no_runs)
            ).rowcount
        except sa.exc.IntegrityError:  # PostgreSQL: a run created meanwhile holds the key
            deleted = 0
        if deleted:
            savepoint.commit()
            return
        savepoint.rollback()
    count = conn.execute(count_runs).scalar_one()
    if not count:  # nothing to delete: it is gone already
        raise ConfigError(f"there is no experiment {name!r} in this workspace")
    raise ConfigError(
        f"experiment {name!r} holds {count} run{'' if count == 1 else 's'}; only an experiment "
        "without runs can be deleted. Archive it instead (experiment.archive()): it is then "
        "hidden from Experiment.list and ws.experiments, and its runs are kept"
    )
