"""RunStore.apply: a spool batch and its cursor in one transaction (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from store_helpers import make_run

from ferry.errors import RunNotFound, StoreError
from ferry.status import RunStatus
from ferry.tracking import ArtifactRecord, MetricSeries, RunRecord, RunStore
from ferry.tracking.base import (
    AddArtifacts,
    AddProperties,
    CreateRun,
    RemoveTags,
    SetStatus,
    SetTags,
    StoreOp,
)
from ferry.tracking.sql import SqlRunStore

PARENT = "exp_1_parent00"
CHILD = "exp_2_child000"


def _series(run_id: str, name: str, *values: float) -> MetricSeries:
    return MetricSeries(run_id, name, "scalar", list(values), None, [1.0] * len(values))


def _everything(store: RunStore, run_id: str) -> dict[str, Any]:
    rec = store.get_run(run_id)
    return {
        "status": rec.status,
        "tags": dict(rec.tags),
        "properties": dict(rec.properties),
        "metrics": [(s.name, s.values) for s in store.get_series([run_id])],
        "artifacts": [(a.name, a.size) for a in store.list_artifacts(run_id)],
        "cursor": store.get_spool_cursor(run_id),
    }


def test_ops_land_in_order_with_the_cursor(store: RunStore) -> None:
    make_run(store, PARENT, status=RunStatus.RUNNING)
    ops: list[StoreOp] = [
        _series(PARENT, "loss", 1.0, 0.5),
        SetTags(PARENT, {"a": "1", "b": None}),
        CreateRun(RunRecord(id=CHILD, experiment="exp", parent_id=PARENT, tags={"c": "x"})),
        _series(CHILD, "acc", 0.1),  # the child exists: created just before
        _series(PARENT, "loss", 0.25),
        SetTags(PARENT, {"a": "2"}),  # later ops overwrite earlier ones
        RemoveTags(PARENT, ("b",)),
        AddProperties(PARENT, {"p": "v"}),
        AddArtifacts((ArtifactRecord(PARENT, "outputs/m.bin", "runs/p/m.bin", 3),)),
        SetStatus(CHILD, RunStatus.RUNNING, at=5.0),
        SetStatus(CHILD, RunStatus.COMPLETED, at=9.0),
    ]
    warnings = store.apply(ops, cursor=(PARENT, {"metrics-1.jsonl": 120, "events.jsonl": 7}))
    assert warnings == []
    assert _everything(store, PARENT) == {
        "status": RunStatus.RUNNING,
        "tags": {"a": "2"},
        "properties": {"p": "v"},
        "metrics": [("loss", [1.0, 0.5]), ("loss", [0.25])],
        "artifacts": [("outputs/m.bin", 3)],
        "cursor": {"metrics-1.jsonl": 120, "events.jsonl": 7},
    }
    child = store.get_run(CHILD)
    assert (child.status, child.start_time, child.end_time) == (RunStatus.COMPLETED, 5.0, 9.0)
    assert child.tags == {"c": "x"} and child.parent_id == PARENT
    assert [(s.name, s.values) for s in store.get_series([CHILD])] == [("acc", [0.1])]


def test_the_cursor_moves_forward_and_is_kept_per_run(store: RunStore) -> None:
    make_run(store, PARENT)
    make_run(store, CHILD)
    assert store.get_spool_cursor(PARENT) == {}
    store.apply([], cursor=(PARENT, {"a.jsonl": 10}))
    store.apply([_series(PARENT, "m", 1.0)], cursor=(PARENT, {"a.jsonl": 30, "b.jsonl": 4}))
    store.apply([], cursor=(CHILD, {"a.jsonl": 99}))
    assert store.get_spool_cursor(PARENT) == {"a.jsonl": 30, "b.jsonl": 4}
    assert store.get_spool_cursor(CHILD) == {"a.jsonl": 99}


def test_refused_ops_are_skipped_with_a_warning_and_the_others_land(store: RunStore) -> None:
    make_run(store, PARENT, status=RunStatus.RUNNING, properties={"p": "old"})
    make_run(store, CHILD, status=RunStatus.COMPLETED)
    ops: list[StoreOp] = [
        SetTags(PARENT, {"before": "1"}),
        SetStatus(CHILD, RunStatus.RUNNING),  # Completed → Running: the table forbids it
        AddProperties(PARENT, {"p": "new", "q": "1"}),  # changes a property
        CreateRun(RunRecord(id=CHILD, experiment="exp")),  # the id exists
        SetTags("exp_9_nothere", {"x": "1"}),  # no such run
        _series("exp_9_nothere", "m", 1.0),  # no such run
        _series(PARENT, "huge", 10**5000),  # JSON cannot hold it
        CreateRun(RunRecord(id="exp_3_orphan00", experiment="exp", parent_id="exp_9_nothere")),
        _series(PARENT, "m", 1.0),
        SetTags(PARENT, {"after": "2"}),
    ]
    warnings = store.apply(ops, cursor=(PARENT, {"s.jsonl": 50}))
    assert len(warnings) == 7, warnings
    for text, expected in zip(
        warnings,
        [
            "status Running of run exp_2_child000 skipped: run exp_2_child000 cannot move from "
            "Completed to Running",
            "property 'p' of run exp_1_parent00 is already 'old'",
            f"run '{CHILD}' exists already",
            "SetTags of run exp_9_nothere skipped: no run 'exp_9_nothere'",
            "metric 'm' of run exp_9_nothere skipped: no run 'exp_9_nothere'",
            "metric 'huge' of run exp_1_parent00 has a value that cannot be stored",
            "creating run exp_3_orphan00 skipped: no run 'exp_9_nothere'",
        ],
        strict=True,
    ):
        assert expected in text
    assert _everything(store, PARENT) == {
        "status": RunStatus.RUNNING,
        "tags": {"before": "1", "after": "2"},
        "properties": {"p": "old"},  # "q" came with the refused op: not added either
        "metrics": [("m", [1.0])],
        "artifacts": [],
        "cursor": {"s.jsonl": 50},
    }
    assert store.get_run(CHILD).status == RunStatus.COMPLETED
    with pytest.raises(RunNotFound):
        store.get_run("exp_3_orphan00")


def test_a_cursor_for_an_unknown_run_stores_nothing(store: RunStore) -> None:
    make_run(store, PARENT)
    with pytest.raises(RunNotFound, match="nothing was stored"):
        store.apply([SetTags(PARENT, {"a": "1"})], cursor=("exp_9_nothere", {"s.jsonl": 1}))
    assert store.get_run(PARENT).tags == {}


def test_a_foreign_error_midway_stores_neither_ops_nor_cursor(store: RunStore) -> None:
    make_run(store, PARENT, status=RunStatus.RUNNING)
    store.apply([], cursor=(PARENT, {"s.jsonl": 10}))
    before = _everything(store, PARENT)
    ops: list[StoreOp] = [
        SetTags(PARENT, {"a": "1"}),
        _series(PARENT, "m", 1.0),
        SetStatus(PARENT, RunStatus.FINALIZING),
        # a definition SQLAlchemy cannot serialise: not a refusal, an error
        CreateRun(RunRecord(id=CHILD, experiment="exp", definition={"x": object()})),
        SetTags(PARENT, {"b": "2"}),
    ]
    with pytest.raises((sa.exc.StatementError, TypeError), match="not JSON serializable"):
        store.apply(ops, cursor=(PARENT, {"s.jsonl": 90}))
    assert _everything(store, PARENT) == before
    with pytest.raises(TypeError, match="not a store operation"):
        store.apply([SetTags(PARENT, {"a": "1"}), "tags"], cursor=(PARENT, {"s.jsonl": 90}))  # type: ignore[list-item]
    assert _everything(store, PARENT) == before


def test_a_connection_lost_midway_stores_neither_ops_nor_cursor(
    store: RunStore, store_url: str
) -> None:
    """The connection dies just before the cursor is written: the whole batch is gone."""
    assert isinstance(store, SqlRunStore)
    make_run(store, PARENT, status=RunStatus.RUNNING)
    before = _everything(store, PARENT)
    killed: list[str] = []

    def kill_before_cursor(conn: sa.Connection, _cur: Any, statement: str, *_: Any) -> None:
        if "spool_cursors" not in statement or killed:
            return
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        if conn.dialect.name == "sqlite":
            dbapi.close()  # an uncommitted SQLite transaction dies with its connection
        else:
            admin = sa.create_engine(store_url)
            with admin.connect() as other:
                other.execute(sa.select(sa.func.pg_terminate_backend(dbapi.info.backend_pid)))
            admin.dispose()
        killed.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", kill_before_cursor)
    ops: list[StoreOp] = [
        SetTags(PARENT, {"a": "1"}),
        _series(PARENT, "m", 1.0, 2.0),
        CreateRun(RunRecord(id=CHILD, experiment="exp", parent_id=PARENT)),
        SetStatus(PARENT, RunStatus.FINALIZING),
    ]
    with pytest.raises(StoreError, match="cannot write the run history"):
        store.apply(ops, cursor=(PARENT, {"s.jsonl": 90}))
    assert killed
    sa.event.remove(store.engine, "before_cursor_execute", kill_before_cursor)
    assert _everything(store, PARENT) == before
    with pytest.raises(RunNotFound):
        store.get_run(CHILD)
    assert store.apply(ops, cursor=(PARENT, {"s.jsonl": 90})) == []  # the store recovers
    assert _everything(store, PARENT)["cursor"] == {"s.jsonl": 90}
