"""The store contract: every test runs on SQLite and on a real PostgreSQL (``store`` fixture)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import sqlalchemy as sa
from store_helpers import make_run

from ferry.errors import ConfigError, InvalidTransition, RunNotFound, StoreError
from ferry.status import RunStatus
from ferry.tracking import (
    ArtifactRecord,
    MetricRecord,
    MetricSeries,
    RunQuery,
    RunRecord,
    RunStore,
    open_store,
)
from ferry.tracking.schema import HEAD_REVISION


def test_schema_is_created_by_alembic(empty_url: str) -> None:
    store = open_store(empty_url)
    store.list_experiments()
    store.close()
    engine = sa.create_engine(empty_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0005"
        tables = set(sa.inspect(conn).get_table_names())
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()
    assert HEAD_REVISION == "0005"
    expected = {"runs", "metric_series", "tags", "properties", "artifacts", "experiments"}
    assert expected | {"spool_cursors", "environments"} <= tables


def test_an_older_database_is_upgraded_and_keeps_its_runs(empty_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    import ferry.tracking.database as database

    engine = sa.create_engine(empty_url)
    if engine.dialect.name == "sqlite":
        database.prepare_sqlite_file(Path(engine.url.database or ""))
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(database.__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.exec_driver_sql(
            "INSERT INTO experiments (name, created_at, archived) VALUES ('old', 1.0, false)"
        )
        conn.exec_driver_sql(
            "INSERT INTO runs (id, experiment, status, target, run_type, created_at, definition,"
            " timings) VALUES ('old_1_aa', 'old', 'Running', 'local', 'x', 1.0, '{}', '{}')"
        )
    engine.dispose()
    store = open_store(empty_url)
    try:
        assert store.get_run("old_1_aa").status == RunStatus.RUNNING
        store.apply([], cursor=("old_1_aa", {"metrics.jsonl": 10}))
        assert store.get_spool_cursor("old_1_aa") == {"metrics.jsonl": 10}
    finally:
        store.close()


def test_a_database_of_another_application_is_refused(empty_url: str) -> None:
    engine = sa.create_engine(empty_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    engine.dispose()
    store = open_store(empty_url)
    with pytest.raises(StoreError, match=r"is not a ferry database \(it holds other tables: cus"):
        store.list_runs(RunQuery())
    engine = sa.create_engine(empty_url)
    with engine.connect() as conn:  # and nothing of ours was added to it
        assert set(sa.inspect(conn).get_table_names()) == {"customers"}
    engine.dispose()


def test_a_schema_from_a_newer_ferry_is_refused(store: RunStore, store_url: str) -> None:
    store.list_experiments()
    store.close()
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
    engine.dispose()
    with pytest.raises(
        StoreError, match=r"written by a newer ferry \(schema revision 0099\); upgrade"
    ):
        open_store(store_url).list_experiments()


def test_a_damaged_record_is_a_store_error(store: RunStore, store_url: str) -> None:
    run_id = make_run(store)
    store.log_series([MetricSeries(run_id, "m", "scalar", [1.0], None, [0.0])])
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE metric_series SET values_json = '[1.0, tru'")
        conn.exec_driver_sql("UPDATE runs SET status = 'Garbled'")
    engine.dispose()
    for read in (lambda: store.get_metrics([run_id]), lambda: store.get_run(run_id)):
        with pytest.raises(StoreError, match=r"holds a damaged record .*restore it from a backup"):
            read()


def test_store_enforces_the_transition_table(store: RunStore) -> None:
    run_id = make_run(store)
    store.set_status(run_id, RunStatus.PREPARING)
    store.set_status(run_id, RunStatus.RUNNING)
    assert store.get_run(run_id).start_time is not None
    store.set_status(run_id, RunStatus.COMPLETED, at=123.0)
    assert store.get_run(run_id).end_time == 123.0
    with pytest.raises(InvalidTransition, match="Completed to Running"):
        store.set_status(run_id, RunStatus.RUNNING)
    store.set_status(run_id, RunStatus.COMPLETED, at=456.0)  # staying put is allowed ...
    assert store.get_run(run_id).end_time == 123.0  # ... and does not move the end time


def test_set_status_with_expected_moves_only_from_that_status(store: RunStore) -> None:
    run_id = make_run(store, status=RunStatus.RUNNING)
    with pytest.raises(InvalidTransition, match="is Running, not Queued"):
        store.set_status(run_id, RunStatus.FAILED, expected=RunStatus.QUEUED)
    assert store.get_run(run_id).status == RunStatus.RUNNING
    error = {"error": {"message": "supervisor lost"}}
    store.set_status(run_id, RunStatus.FAILED, expected=RunStatus.RUNNING, error=error)
    record = store.get_run(run_id)
    assert record.status == RunStatus.FAILED and record.error == error
    with pytest.raises(RunNotFound):
        store.set_status("nope", RunStatus.FAILED, expected=RunStatus.RUNNING)


def test_unknown_run_is_a_clear_error(store: RunStore) -> None:
    with pytest.raises(RunNotFound, match="no run 'nope'"):
        store.get_run("nope")
    with pytest.raises(RunNotFound, match="no run 'nope'"):
        store.update_run("nope", heartbeat_at=1.0)


def test_a_run_id_is_never_reused(store: RunStore) -> None:
    run_id = make_run(store, tags={"a": "1"})
    with pytest.raises(StoreError, match="exists already"):
        make_run(store, run_id, status=RunStatus.RUNNING, tags={"a": "2"})
    record = store.get_run(run_id)
    assert record.status == RunStatus.QUEUED and record.tags == {"a": "1"}


def test_properties_are_immutable_and_tags_mutable(store: RunStore) -> None:
    run_id = make_run(store)
    store.add_properties(run_id, {"a": "1"})
    store.add_properties(run_id, {"a": "1", "b": "2"})  # same value: fine
    with pytest.raises(ConfigError, match="immutable"):
        store.add_properties(run_id, {"c": "3", "a": "other"})
    store.set_tags(run_id, {"t": "x", "empty": None})
    store.set_tags(run_id, {"t": "y"})
    store.remove_tags(run_id, ["empty", "never-set"])
    rec = store.get_run(run_id)
    assert rec.properties == {"a": "1", "b": "2"}  # the refused call added nothing ("c")
    assert rec.tags == {"t": "y"}


def test_metric_values_and_odd_names_round_trip(store: RunStore) -> None:
    run_id = make_run(store)
    names = ["loss ", " a/b:c", "ü nicode", "x" * 300]
    values = [1.5, 2, True, "text", None, float("nan"), [1, 2], {"c": [1]}]
    store.log_metrics(
        [
            MetricRecord(run_id, n, "scalar", v, step=i, ts=1.0)
            for i, (n, v) in enumerate(zip(names * 2, values, strict=True))
        ]
    )
    got = {m.step: m for m in store.get_metrics([run_id])}  # grouped by name, order kept per name
    assert [got[i].name for i in range(8)] == names * 2
    assert got[0].value == 1.5 and got[1].value == 2 and isinstance(got[1].value, int)
    assert got[2].value is True and got[3].value == "text" and got[4].value is None
    assert got[5].value != got[5].value  # NaN survives
    assert got[6].value == [1, 2] and got[7].value == {"c": [1]}
    by_name = [m.step for m in store.get_metrics([run_id]) if m.name == "loss "]
    assert by_name == [0, 4]


def test_a_value_json_cannot_hold_is_a_store_error_and_stores_nothing(store: RunStore) -> None:
    run_id = make_run(store)
    good = MetricSeries(run_id, "ok", "scalar", [1.0], None, [0.0])
    huge = MetricSeries(run_id, "huge", "scalar", [10**5000], None, [0.0])
    with pytest.raises(StoreError, match="metric 'huge' of run exp_1_abcdef12 has a value"):
        store.log_series([good, huge])
    assert store.get_series([run_id]) == []


def test_list_runs_filters(store: RunStore) -> None:
    a = make_run(store, "exp_1_aaaaaaaa", tags={"team": "a"}, properties={"p": "1"})
    make_run(store, "exp_2_bbbbbbbb", tags={"team": "b"})
    make_run(store, "exp_3_cccccccc", parent_id=a)
    assert [r.id for r in store.list_runs(RunQuery(tags={"team": "a"}))] == [a]
    assert [r.id for r in store.list_runs(RunQuery(tags={"team": None}, top_level_only=True))] == [
        "exp_2_bbbbbbbb",
        a,
    ]
    assert [r.id for r in store.list_runs(RunQuery(properties={"p": "1"}))] == [a]
    assert [r.id for r in store.list_runs(RunQuery(parent_id=a))] == ["exp_3_cccccccc"]
    assert len(store.list_runs(RunQuery(statuses=[RunStatus.QUEUED]))) == 3
    assert store.list_runs(RunQuery(statuses=[RunStatus.RUNNING])) == []


def test_artifacts_targets_environments(store: RunStore) -> None:
    run_id = make_run(store)
    store.add_artifacts([ArtifactRecord(run_id, "outputs/m.pkl", "runs/x/m.pkl", 3)])
    store.add_artifacts([ArtifactRecord(run_id, "outputs/m.pkl", "runs/x/m.pkl", 4)])
    assert [(a.name, a.size) for a in store.list_artifacts(run_id)] == [("outputs/m.pkl", 4)]
    store.save_target("vm1", "ssh", {"address": "h"})
    assert store.get_target("vm1") == ("ssh", {"address": "h"})
    assert store.delete_target("vm1") and store.get_target("vm1") is None
    assert store.register_environment("e", {"name": "e"}) == 1
    assert store.register_environment("e", {"name": "e", "v": 2}) == 2
    assert store.get_environment("e") == (2, {"name": "e", "v": 2})
    with pytest.raises(ConfigError, match=r"known versions: \[1, 2\]"):
        store.get_environment("e", 7)


def test_thousands_of_artifacts_in_one_call(store: RunStore) -> None:
    """More rows than one statement may carry parameters for (4 x 16,500 > 65,535, PostgreSQL's
    cap; SQLite's is 32,766): a job that wrote 30,000 outputs is indexed whole."""
    run_id = make_run(store)
    names = [f"outputs/f{i:05d}" for i in range(16_500)]
    store.add_artifacts([ArtifactRecord(run_id, n, f"runs/x/{n}", i) for i, n in enumerate(names)])
    listed = store.list_artifacts(run_id)
    assert [a.name for a in listed] == names and listed[-1].size == 16_499


def _hammer(url: str, run_id: str, n: int) -> None:
    s = open_store(url)
    for i in range(n):
        s.log_metrics([MetricRecord(run_id, "m", "scalar", float(i), ts=0.0)])
        s.set_tags(run_id, {"i": str(i)})
    s.close()


def test_many_processes_write_at_once_without_errors(store: RunStore, store_url: str) -> None:
    run_id = make_run(store)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(store_url, run_id, 150)) for _ in range(4)]
    for p in procs:
        p.start()
    for _ in range(150):
        store.log_metrics([MetricRecord(run_id, "m", "scalar", -1.0, ts=0.0)])
        store.get_run(run_id)
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert len(store.get_metrics([run_id])) == 750
    assert store.get_run(run_id).tags == {"i": "149"}


def test_series_are_stored_columnar_and_read_back_in_order(store: RunStore) -> None:
    run_id = make_run(store)
    store.log_series([MetricSeries(run_id, "loss", "scalar", [1.0, 0.5], [0, 1], [1.0, 2.0])])
    store.log_metrics([MetricRecord(run_id, "loss", "scalar", 0.25, None, "", 3.0)])
    store.log_series(
        [MetricSeries(run_id, "acc", "scalar", list(range(10_000)), None, [0.0] * 10_000)]
    )
    series = store.get_series([run_id])
    assert [(s.name, len(s.values)) for s in series] == [("loss", 2), ("loss", 1), ("acc", 10_000)]
    assert series[1].steps is None
    assert [s.name for s in store.get_series([run_id], name="acc")] == ["acc"]
    records = store.get_metrics([run_id])
    assert [r.value for r in records[:3]] == [1.0, 0.5, 0.25]
    assert [r.step for r in records[:3]] == [0, 1, None]


def test_experiments_are_listed_once(store: RunStore) -> None:
    store.ensure_experiment("b")
    store.ensure_experiment("a")
    store.ensure_experiment("b")
    store.create_run(RunRecord(id="c_1_aa", experiment="c"))
    assert store.list_experiments() == ["a", "b", "c"]


@pytest.mark.parametrize("json_aggregates", [True, False], ids=["one-statement", "three"])
def test_a_run_reads_back_its_tags_and_properties_in_either_way(
    store: RunStore, json_aggregates: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``get_run`` is one statement where the database aggregates JSON (SQLite ≥ 3.38,
    PostgreSQL), three elsewhere: the same record either way, odd keys and values included."""
    from ferry.tracking import sql

    if not json_aggregates:
        monkeypatch.setattr(sql, "_RUN_WITH_DETAILS", {"sqlite": None, "postgresql": None})
    run_id = make_run(store)
    bare = store.get_run(run_id)
    assert (bare.tags, bare.properties) == ({}, {})
    tags = {'ü "quoted" key': "välue\n2", "valueless": None, "{}": "[]"}
    store.set_tags(run_id, tags)
    store.add_properties(run_id, {"p": "1", "ß": "∞"})
    record = store.get_run(run_id)
    assert record.tags == tags and record.properties == {"p": "1", "ß": "∞"}
    assert record == store.list_runs(RunQuery())[0]
