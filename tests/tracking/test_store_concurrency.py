"""Writers racing on one database (SQLite and PostgreSQL under READ COMMITTED).

Each racer has its own store (its own engine and connections), so the database, not a Python
lock, decides who wins. Racers are released together by a barrier and repeated over many runs:
a read-then-write without compare-and-set lets two of them win (measured on PostgreSQL before
the fix).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest
from store_helpers import make_run, race

from ferry.errors import InvalidTransition
from ferry.status import TRANSITIONS, RunStatus
from ferry.tracking import RunQuery, RunRecord, RunStore, open_store

#: distinct endings a Running run may take: the racers' targets
ENDINGS = sorted(s for s in TRANSITIONS[RunStatus.RUNNING] if s.is_terminal())


@pytest.fixture
def racers(store: RunStore, store_url: str) -> Iterator[list[RunStore]]:
    store.list_experiments()  # schema created before the race
    stores = [open_store(store_url) for _ in range(20)]
    for s in stores:
        s.list_experiments()  # connected before the race
    yield stores
    for s in stores:
        s.close()


def test_racing_endings_exactly_one_wins(store: RunStore, racers: list[RunStore]) -> None:
    assert len(ENDINGS) >= 2
    for round_ in range(25):
        run_id = make_run(store, f"exp_{round_}_race", status=RunStatus.RUNNING)
        calls = [
            functools.partial(racers[i].set_status, run_id, ending)
            for i, ending in enumerate(ENDINGS)
        ]
        results = race(calls)
        winners = [ENDINGS[i] for i, r in enumerate(results) if not isinstance(r, BaseException)]
        losers = [r for r in results if isinstance(r, BaseException)]
        assert len(winners) == 1, f"round {round_}: {results}"
        assert all(isinstance(r, InvalidTransition) for r in losers), losers
        assert all(f"from {winners[0]} to" in str(r) for r in losers)
        assert store.get_run(run_id).status == winners[0]


def test_mark_failed_only_if_still_running_loses_to_finalizing(
    store: RunStore, racers: list[RunStore]
) -> None:
    """A reader's "Failed if still Running" and the supervisor's Finalizing: one of them wins."""
    for round_ in range(25):
        run_id = make_run(store, f"exp_{round_}_guard", status=RunStatus.RUNNING)
        results = race(
            [
                functools.partial(racers[0].set_status, run_id, RunStatus.FINALIZING),
                functools.partial(
                    racers[1].set_status, run_id, RunStatus.FAILED, expected=RunStatus.RUNNING
                ),
            ]
        )
        final = store.get_run(run_id).status
        if isinstance(results[1], InvalidTransition):
            assert results[0] == RunStatus.FINALIZING and final == RunStatus.FINALIZING
        else:  # Failed first; Finalizing then is refused
            assert results[1] == RunStatus.FAILED and final == RunStatus.FAILED
            assert isinstance(results[0], InvalidTransition)


def test_concurrent_environment_versions_are_distinct_and_consecutive(
    racers: list[RunStore],
) -> None:
    calls = [
        functools.partial(s.register_environment, "env", {"n": i}) for i, s in enumerate(racers)
    ]
    versions = race(calls)
    assert sorted(versions) == list(range(1, 21)), versions  # type: ignore[type-var]
    assert racers[0].list_environments() == {"env": list(range(1, 21))}
    for i, version in enumerate(versions):
        assert racers[0].get_environment("env", version) == (version, {"n": i})  # type: ignore[arg-type]


def test_concurrent_ensure_experiment_of_one_name_never_fails(racers: list[RunStore]) -> None:
    def create(i: int) -> None:
        racers[i].ensure_experiment("shared")
        racers[i].create_run(RunRecord(id=f"shared_{i}_run", experiment="new-by-run"))

    results = race([functools.partial(create, i) for i in range(len(racers))])
    assert results == [None] * len(racers)
    assert racers[0].list_experiments() == ["new-by-run", "shared"]
    assert len(racers[0].list_runs(RunQuery(experiment="new-by-run"))) == len(racers)


def test_concurrent_first_opens_create_the_schema_once(empty_url: str) -> None:
    stores = [open_store(empty_url) for _ in range(8)]
    try:
        assert race([s.list_experiments for s in stores]) == [[]] * 8
    finally:
        for s in stores:
            s.close()
