"""The SQLAlchemy store: schema by Alembic, transitions, tags, properties, metrics, concurrency."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from ferry.errors import ConfigError, InvalidTransition, RunNotFound
from ferry.status import RunStatus
from ferry.tracking import ArtifactRecord, MetricRecord, RunQuery, RunRecord, open_store


@pytest.fixture
def store(awkward_dir: Path):  # type: ignore[no-untyped-def]
    s = open_store(f"sqlite:///{awkward_dir / 'ferry.db'}")
    yield s
    s.close()


def _run(store, run_id: str = "exp_1_abcdef12", **kw) -> str:  # type: ignore[no-untyped-def]
    store.create_run(RunRecord(id=run_id, experiment="exp", status=RunStatus.QUEUED, **kw))
    return run_id


def test_schema_is_created_by_alembic_in_wal_mode(store, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    store.list_experiments()
    con = sqlite3.connect(awkward_dir / "ferry.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0001"
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "metric_series", "tags", "properties", "artifacts", "experiments"} <= tables


def test_store_enforces_the_transition_table(store) -> None:  # type: ignore[no-untyped-def]
    run_id = _run(store)
    store.set_status(run_id, RunStatus.PREPARING)
    store.set_status(run_id, RunStatus.RUNNING)
    assert store.get_run(run_id).start_time is not None
    store.set_status(run_id, RunStatus.COMPLETED)
    assert store.get_run(run_id).end_time is not None
    with pytest.raises(InvalidTransition, match="Completed to Running"):
        store.set_status(run_id, RunStatus.RUNNING)


def test_unknown_run_is_a_clear_error(store) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RunNotFound, match="no run 'nope'"):
        store.get_run("nope")


def test_properties_are_immutable_and_tags_mutable(store) -> None:  # type: ignore[no-untyped-def]
    run_id = _run(store)
    store.add_properties(run_id, {"a": "1"})
    store.add_properties(run_id, {"a": "1", "b": "2"})  # same value: fine
    with pytest.raises(ConfigError, match="immutable"):
        store.add_properties(run_id, {"a": "other"})
    store.set_tags(run_id, {"t": "x", "empty": None})
    store.set_tags(run_id, {"t": "y"})
    store.remove_tags(run_id, ["empty"])
    rec = store.get_run(run_id)
    assert rec.properties == {"a": "1", "b": "2"}
    assert rec.tags == {"t": "y"}


def test_metric_values_and_odd_names_round_trip(store) -> None:  # type: ignore[no-untyped-def]
    run_id = _run(store)
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


def test_list_runs_filters(store) -> None:  # type: ignore[no-untyped-def]
    a = _run(store, "exp_1_aaaaaaaa", tags={"team": "a"}, properties={"p": "1"})
    _run(store, "exp_2_bbbbbbbb", tags={"team": "b"})
    _run(store, "exp_3_cccccccc", parent_id=a)
    assert [r.id for r in store.list_runs(RunQuery(tags={"team": "a"}))] == [a]
    assert [r.id for r in store.list_runs(RunQuery(tags={"team": None}, top_level_only=True))] == [
        "exp_2_bbbbbbbb",
        a,
    ]
    assert [r.id for r in store.list_runs(RunQuery(properties={"p": "1"}))] == [a]
    assert [r.id for r in store.list_runs(RunQuery(parent_id=a))] == ["exp_3_cccccccc"]
    assert len(store.list_runs(RunQuery(statuses=[RunStatus.QUEUED]))) == 3


def test_artifacts_targets_environments(store) -> None:  # type: ignore[no-untyped-def]
    run_id = _run(store)
    store.add_artifacts([ArtifactRecord(run_id, "outputs/m.pkl", "runs/x/m.pkl", 3)])
    store.add_artifacts([ArtifactRecord(run_id, "outputs/m.pkl", "runs/x/m.pkl", 4)])
    assert [(a.name, a.size) for a in store.list_artifacts(run_id)] == [("outputs/m.pkl", 4)]
    store.save_target("vm1", "ssh", {"address": "h"})
    assert store.get_target("vm1") == ("ssh", {"address": "h"})
    assert store.delete_target("vm1") and store.get_target("vm1") is None
    assert store.register_environment("e", {"name": "e"}) == 1
    assert store.register_environment("e", {"name": "e", "v": 2}) == 2
    assert store.get_environment("e")[0] == 2
    with pytest.raises(ConfigError, match=r"known versions: \[1, 2\]"):
        store.get_environment("e", 7)


def _hammer(url: str, run_id: str, n: int) -> None:
    s = open_store(url)
    for i in range(n):
        s.log_metrics([MetricRecord(run_id, "m", "scalar", float(i), ts=0.0)])
        s.set_tags(run_id, {"i": str(i)})
    s.close()


def test_many_processes_write_at_once_without_locked_errors(store, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    run_id = _run(store)
    url = f"sqlite:///{awkward_dir / 'ferry.db'}"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(url, run_id, 150)) for _ in range(4)]
    for p in procs:
        p.start()
    for _ in range(150):
        store.log_metrics([MetricRecord(run_id, "m", "scalar", -1.0, ts=0.0)])
        store.get_run(run_id)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(store.get_metrics([run_id])) == 750


def test_series_are_stored_columnar_and_read_back_in_order(store) -> None:  # type: ignore[no-untyped-def]
    from ferry.tracking import MetricSeries

    run_id = _run(store)
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
