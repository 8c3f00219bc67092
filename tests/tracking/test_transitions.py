"""The transition table as a graph (pure), and the store enforcing exactly it (both databases).

Written against ``ferry.status.TRANSITIONS`` and ``RunStatus`` generically, so the properties
hold for statuses added later (Provisioning, Unapproved, Pausing, Paused …).
"""

from __future__ import annotations

import pytest
from store_helpers import make_run

from ferry.errors import InvalidTransition
from ferry.status import TRANSITIONS, RunStatus, can_transition, reachable
from ferry.tracking import RunStore

TERMINAL = [s for s in RunStatus if s.is_terminal()]
NON_TERMINAL = [s for s in RunStatus if not s.is_terminal()]


def test_every_status_has_a_row_and_names_only_statuses() -> None:
    assert set(TRANSITIONS) == set(RunStatus)
    for targets in TRANSITIONS.values():
        assert all(isinstance(s, RunStatus) for s in targets)
    assert TERMINAL, "some status must end a run"


@pytest.mark.parametrize("status", NON_TERMINAL, ids=str)
def test_every_non_terminal_status_can_reach_a_terminal_one(status: RunStatus) -> None:
    assert reachable(status) & set(TERMINAL), f"a run in {status} can never end"


@pytest.mark.parametrize("status", NON_TERMINAL, ids=str)
def test_every_non_terminal_status_can_fail_or_be_canceled(status: RunStatus) -> None:
    """A supervisor or reader that gives up must be able to end a run from anywhere, at once."""
    assert {RunStatus.FAILED, RunStatus.CANCELED} & TRANSITIONS[status]


@pytest.mark.parametrize("status", TERMINAL, ids=str)
def test_nothing_leaves_a_terminal_status(status: RunStatus) -> None:
    assert TRANSITIONS[status] == frozenset()
    assert [s for s in RunStatus if s != status and can_transition(status, s)] == []


def test_every_status_but_the_first_is_reachable_from_not_started() -> None:
    assert reachable(RunStatus.NOT_STARTED) == set(RunStatus)


def test_the_store_accepts_exactly_the_tables_edges(store: RunStore) -> None:
    refused, accepted = 0, 0
    for i, current in enumerate(RunStatus):
        for j, new in enumerate(RunStatus):
            run_id = make_run(store, f"exp_{i}_{j:08x}", status=current)
            allowed = current == new or new in TRANSITIONS[current]
            if allowed:
                assert store.set_status(run_id, new) == new
                accepted += 1
            else:
                with pytest.raises(InvalidTransition, match=f"from {current} to {new}"):
                    store.set_status(run_id, new)
                refused += 1
            assert store.get_run(run_id).status == (new if allowed else current)
    assert accepted and refused
