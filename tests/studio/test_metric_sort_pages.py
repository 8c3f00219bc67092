"""A sort on a metric pages exactly as the in-memory rules say, across the point where the runs
with the metric end and those without it begin (SQLite answers it in two index walks)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from ferry.status import RunStatus
from ferry.tracking import MetricSeries, RunRecord
from ferry.tracking.search import Clause, OrderBy, RunSearch, search_in_memory
from ferry.tracking.sql import SqlRunStore


@pytest.fixture
def store(tmp_path: Path) -> SqlRunStore:
    store = SqlRunStore(f"sqlite:///{tmp_path / 'runs.db'}")
    store.ensure_experiment("e")
    for i in range(11):
        store.create_run(
            RunRecord(
                id=f"r{i:02d}", experiment="e", status=RunStatus.COMPLETED, created_at=100.0 + i,
                tags={"team": "ab"[i % 2]}, parent_id="r00" if i == 10 else None,
            )
        )  # fmt: skip
        if i % 3:  # r01 r02 r04 r05 r07 r08 r10 have it; ties between some
            value = float(i // 2)
            store.log_series([MetricSeries(f"r{i:02d}", "acc", "scalar", [value], None, [1.0])])
    return store


@pytest.mark.parametrize(
    ("ascending", "clauses", "top_level", "limit"),
    list(
        itertools.product(
            (True, False), ((), (Clause("tag", "team", "=", "a"),)), (True, False), (1, 3, 4)
        )
    ),
)
def test_every_page_matches_the_rules(
    store: SqlRunStore,
    ascending: bool,
    clauses: tuple[Clause, ...],
    top_level: bool,
    limit: int,
) -> None:
    every = [store.get_run(f"r{i:02d}") for i in range(11)]
    offset: int | None = 0
    while offset is not None:
        search = RunSearch(
            ("e",), clauses, (OrderBy("metric", "acc", ascending),), limit=limit, offset=offset,
            top_level_only=top_level,
        )  # fmt: skip
        got = store.search_runs(search)
        want = search_in_memory(search, every, store.latest_metrics)
        assert [r.id for r in got.runs] == [r.id for r in want.runs], (offset, limit)
        assert got.next_offset == want.next_offset
        assert store.count_runs(search) == len(search_in_memory(
            RunSearch(("e",), clauses, limit=100, top_level_only=top_level), every,
            store.latest_metrics).runs)  # fmt: skip
        offset = got.next_offset


@pytest.mark.parametrize("offset", [6, 7, 8, 9, 50])
def test_a_page_past_the_runs_with_the_metric(store: SqlRunStore, offset: int) -> None:
    every = [store.get_run(f"r{i:02d}") for i in range(11)]
    search = RunSearch(("e",), (), (OrderBy("metric", "acc", False),), limit=2, offset=offset)
    got = store.search_runs(search)
    want = search_in_memory(search, every, store.latest_metrics)
    assert [r.id for r in got.runs] == [r.id for r in want.runs]
    assert got.next_offset == want.next_offset
