"""RunStore.search_runs: metric, tag, property and attribute filters; sorted pages; every store
(SQLite, PostgreSQL, HTTP) answers the same, and the in-memory rules agree with SQL."""

from __future__ import annotations

import pytest

from ferry.errors import ConfigError
from ferry.status import RunStatus
from ferry.tracking import MetricSeries, RunRecord, RunStore
from ferry.tracking.search import Clause, OrderBy, RunSearch, search_in_memory


def _fill(store: RunStore) -> None:
    for i in range(30):
        run_id = f"srch_{i}_{i:08x}"
        store.create_run(
            RunRecord(
                id=run_id,
                experiment="srch",
                status=RunStatus.COMPLETED if i % 3 else RunStatus.FAILED,
                created_at=1000.0 + i,
                tags={"team": "ab"[i % 2]},
                properties={"alpha": str(i % 5)},
            )
        )
        if i % 10 != 9:  # some runs never logged the metric
            values = [5.0, float((i * 7) % 30)]  # the latest (step 1) counts
            store.log_series([MetricSeries(run_id, "mse", "scalar", values, [0, 1], [1.0, 2.0])])
    store.create_run(RunRecord(id="other_1_aaaaaaaa", experiment="other", tags={"team": "a"}))


def _ids(store: RunStore, search: RunSearch) -> list[str]:
    return [r.id for r in store.search_runs(search).runs]


def test_filters_and_a_metric_sort(store: RunStore) -> None:
    _fill(store)
    search = RunSearch(
        ("srch",),
        (Clause("metric", "mse", "<", 15.0), Clause("tag", "team", "=", "a")),
        (OrderBy("metric", "mse"),),
        limit=5,
    )
    page = store.search_runs(search)
    latest = store.latest_metrics([r.id for r in page.runs])
    values = [latest[r.id]["mse"] for r in page.runs]
    assert values == sorted(values) and all(v < 15 for v in values) and len(values) == 5
    assert all(r.tags["team"] == "a" and r.experiment == "srch" for r in page.runs)
    assert page.next_offset == 5 and page.latest[page.runs[0].id]["mse"] == values[0]
    # the same answer as the rules in Python, over every run of the experiment
    from ferry.tracking import RunQuery

    records = store.list_runs(RunQuery(experiment="srch"))
    expected = search_in_memory(search, records, store.latest_metrics)
    assert [r.id for r in expected.runs] == [r.id for r in page.runs]


def test_runs_without_the_sorted_metric_come_last_and_pages_follow(store: RunStore) -> None:
    _fill(store)
    ordered = RunSearch(("srch",), order_by=(OrderBy("metric", "mse", ascending=False),), limit=12)
    first = store.search_runs(ordered)
    second = store.search_runs(RunSearch(("srch",), order_by=ordered.order_by, limit=12, offset=12))
    third = store.search_runs(RunSearch(("srch",), order_by=ordered.order_by, limit=12, offset=24))
    ids = [r.id for page in (first, second, third) for r in page.runs]
    assert len(ids) == len(set(ids)) == 30 and third.next_offset is None
    assert ids[-3:] == ["srch_29_0000001d", "srch_19_00000013", "srch_9_00000009"]


def test_property_status_and_time_filters(store: RunStore) -> None:
    _fill(store)
    failed = RunSearch(("srch",), (Clause("attribute", "status", "IN", ("Failed",)),))
    assert len(_ids(store, failed)) == 10
    props = RunSearch(("srch",), (Clause("property", "alpha", "IN", ("1", "2")),))
    assert len(_ids(store, props)) == 12
    late = RunSearch(("srch",), (Clause("attribute", "created_at", ">=", 1025.0),))
    assert sorted(_ids(store, late)) == sorted(f"srch_{i}_{i:08x}" for i in range(25, 30))
    like = RunSearch(("srch", "other"), (Clause("tag", "team", "LIKE", "a%"),))
    assert "other_1_aaaaaaaa" in _ids(store, like) and len(_ids(store, like)) == 16


@pytest.mark.parametrize(
    "clause",
    [
        Clause("metric", "mse", "<", "x"),
        Clause("metric", "mse", "LIKE", "1%"),
        Clause("tag", "team", "=", 3),
        Clause("attribute", "created_at", "=", "yesterday"),
        Clause("attribute", "nope", "=", "x"),
        Clause("tag", "team", "IN", "a"),
        Clause("color", "x", "=", "y"),
    ],
)
def test_a_search_that_cannot_be_answered_is_refused(store: RunStore, clause: Clause) -> None:
    with pytest.raises(ConfigError):
        store.search_runs(RunSearch(("srch",), (clause,)))


def test_a_page_carries_each_runs_tags_properties_and_non_finite_latest_values(
    store: RunStore,
) -> None:
    """PostgreSQL reads a page's tags, properties and latest values in the page's own query
    (aggregated as JSON): a tag without a value, a run with neither tags nor properties and
    non-finite metric values come back as the other stores give them."""
    import math

    store.create_run(
        RunRecord(
            id="full_1_aaaaaaaa",
            experiment="agg",
            created_at=1.0,
            tags={"team": "a", "blank": None, "unicode": "é✓"},
            properties={"alpha": "0.5"},
        )
    )
    store.create_run(RunRecord(id="bare_2_bbbbbbbb", experiment="agg", created_at=2.0))
    store.log_series(
        [
            MetricSeries("full_1_aaaaaaaa", "nan", "scalar", [math.nan], [0], [1.0]),
            MetricSeries("full_1_aaaaaaaa", "inf", "scalar", [-math.inf], [0], [1.0]),
            MetricSeries("full_1_aaaaaaaa", "mse", "scalar", [0.125], [0], [1.0]),
        ]
    )
    page = store.search_runs(RunSearch(("agg",), order_by=(OrderBy("attribute", "created_at"),)))
    full, bare = page.runs
    assert (full.id, bare.id) == ("full_1_aaaaaaaa", "bare_2_bbbbbbbb")
    assert full.tags == {"team": "a", "blank": None, "unicode": "é✓"}
    assert full.properties == {"alpha": "0.5"}
    assert bare.tags == {} and bare.properties == {}
    latest = page.latest["full_1_aaaaaaaa"]
    # NaN is never a latest value (it cannot be sorted on); infinities are
    assert latest == {"inf": -math.inf, "mse": 0.125}
    assert page.latest["bare_2_bbbbbbbb"] == {}
    assert page.next_offset is None
