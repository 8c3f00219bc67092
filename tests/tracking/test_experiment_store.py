"""The store's experiments and run numbers, on SQLite and a real PostgreSQL (``store`` fixture).

Experiments have a stable id, tags and an archive time; archived ones are left out of
``list_experiments``; one without runs can be deleted. Runs are numbered 1, 2, … per
experiment in creation order, also when many are created at once.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import sqlalchemy as sa
from store_helpers import make_run, race

from ferry.errors import ConfigError
from ferry.tracking import RunRecord, RunStore, open_store
from ferry.tracking.base import CreateRun


def test_an_experiment_keeps_its_id_tags_and_archive_time(store: RunStore) -> None:
    store.ensure_experiment("exp")
    first = store.find_experiment("exp")
    assert first is not None and len(first.id) == 36 and not first.archived
    store.ensure_experiment("exp")  # again: the same experiment, the same id
    assert store.find_experiment("exp") == first
    store.set_experiment_tags("exp", {"team": "a", "flag": None})
    store.set_experiment_tags("exp", {"team": "b"})
    store.remove_experiment_tags("exp", ["flag", "never-set"])
    archived = store.set_experiment_archived("exp", True)
    assert archived.archived and archived.id == first.id and archived.tags == {"team": "b"}
    again = store.set_experiment_archived("exp", True)  # archiving twice keeps the first time
    assert again.archived_time == archived.archived_time
    assert store.find_experiment("nope") is None


def test_archived_experiments_are_hidden_unless_asked_for(store: RunStore) -> None:
    for name in ("b", "a", "c"):
        store.ensure_experiment(name)
    store.set_experiment_archived("b", True)
    assert store.list_experiments() == ["a", "c"]
    assert [e.name for e in store.list_experiment_records()] == ["a", "c"]
    assert [e.name for e in store.list_experiment_records(archived=True)] == ["b"]
    assert [e.name for e in store.list_experiment_records(archived=None)] == ["a", "b", "c"]
    store.ensure_experiment("b")  # opening it does not reactivate it
    assert store.list_experiments() == ["a", "c"]
    assert not store.set_experiment_archived("b", False).archived
    assert store.list_experiments() == ["a", "b", "c"]


def test_changing_an_unknown_experiment_is_a_clear_error(store: RunStore) -> None:
    for change in (
        lambda: store.set_experiment_archived("ghost", True),
        lambda: store.set_experiment_tags("ghost", {"a": "1"}),
        lambda: store.remove_experiment_tags("ghost", ["a"]),
        lambda: store.delete_experiment("ghost"),
    ):
        with pytest.raises(ConfigError, match="there is no experiment 'ghost'"):
            change()


def test_only_an_experiment_without_runs_is_deleted(store: RunStore) -> None:
    store.ensure_experiment("empty")
    store.set_experiment_tags("empty", {"a": "1"})
    store.delete_experiment("empty")
    assert store.find_experiment("empty") is None
    make_run(store, "exp_1_aa")
    make_run(store, "exp_2_bb")
    store.set_experiment_tags("exp", {"keep": "me"})
    with pytest.raises(ConfigError, match=r"'exp' holds 2 runs; .*Archive it instead"):
        store.delete_experiment("exp")
    found = store.find_experiment("exp")
    assert found is not None and found.tags == {"keep": "me"}  # nothing was removed


def test_runs_are_numbered_per_experiment_in_creation_order(store: RunStore) -> None:
    make_run(store, "exp_1_aa")
    store.create_run(RunRecord(id="other_1_aa", experiment="other", number=99))
    make_run(store, "exp_2_bb", parent_id="exp_1_aa")
    store.apply([CreateRun(RunRecord(id="exp_3_cc", experiment="exp", parent_id="exp_1_aa"))])
    assert [store.get_run(i).number for i in ("exp_1_aa", "exp_2_bb", "exp_3_cc")] == [1, 2, 3]
    assert store.get_run("other_1_aa").number == 1  # the store numbers; a given number is ignored
    # a refused create (the id exists) takes no number
    store.apply([CreateRun(RunRecord(id="exp_3_cc", experiment="exp"))])
    make_run(store, "exp_4_dd")
    assert store.get_run("exp_4_dd").number == 4


def test_runs_created_at_once_get_distinct_consecutive_numbers(
    store: RunStore, store_url: str
) -> None:
    store.ensure_experiment("exp")
    racers = [open_store(store_url) for _ in range(16)]
    try:
        for s in racers:
            s.list_experiments()
        results = race(
            [
                functools.partial(s.create_run, RunRecord(id=f"exp_{i}_race", experiment="exp"))
                for i, s in enumerate(racers)
            ]
        )
    finally:
        for s in racers:
            s.close()
    assert results == [None] * 16
    numbers = sorted(store.get_run(f"exp_{i}_race").number or 0 for i in range(16))
    assert numbers == list(range(1, 17))


def test_an_older_database_gets_experiment_ids_and_run_numbers(empty_url: str) -> None:
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
        command.upgrade(cfg, "0002")
        conn.exec_driver_sql(
            "INSERT INTO experiments (name, created_at, archived) VALUES ('old', 1.0, false),"
            " ('gone', 2.0, true)"
        )
        for run_id, created in (("old_3_cc", 3.0), ("old_1_aa", 1.0), ("old_2_bb", 1.0)):
            conn.exec_driver_sql(
                "INSERT INTO runs (id, experiment, status, target, run_type, created_at,"
                f" definition, timings) VALUES ('{run_id}', 'old', 'Completed', 'local', 'x',"
                f" {created}, '{{}}', '{{}}')"
            )
    engine.dispose()
    store = open_store(empty_url)
    try:
        numbers = [store.get_run(i).number for i in ("old_1_aa", "old_2_bb", "old_3_cc")]
        assert numbers == [1, 2, 3]  # creation order, ties by id
        store.create_run(RunRecord(id="old_4_dd", experiment="old"))
        assert store.get_run("old_4_dd").number == 4
        old, gone = store.find_experiment("old"), store.find_experiment("gone")
        assert old is not None and gone is not None and old.id != gone.id
        assert not old.archived and gone.archived_time == 2.0
        assert store.list_experiments() == ["old"]
    finally:
        store.close()
