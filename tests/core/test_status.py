"""Run statuses and the transition table (pure), checked against the reference's list."""

from __future__ import annotations

from itertools import pairwise

import pytest

from ferry.errors import ConfigError
from ferry.status import TRANSITIONS, RunStatus, can_transition, parse_status, reachable

# azureml-v1.md §10, written out from the reference document (not from the enum)
REFERENCE = [
    "NotStarted", "Queued", "Preparing", "Provisioning", "Starting", "Running", "CancelRequested",
    "Canceled", "Finalizing", "Completed", "Failed", "Unapproved", "NotResponding", "Pausing",
    "Paused",
]  # fmt: skip
REFERENCE_RUNNING = [
    "NotStarted", "Queued", "Preparing", "Provisioning", "Starting", "Running", "Unapproved",
    "NotResponding", "Pausing", "Paused",
]  # fmt: skip
REFERENCE_POST_PROCESSING = ["CancelRequested", "Finalizing"]
REFERENCE_TERMINAL = ["Completed", "Failed", "Canceled"]

ALL = list(RunStatus)
LIVE = [s for s in ALL if not s.is_terminal()]


def test_statuses_are_the_reference_strings_in_its_order() -> None:
    assert len(REFERENCE) == 15
    assert [s.value for s in RunStatus] == REFERENCE


def test_terminal_statuses_are_the_reference_ones() -> None:
    assert sorted(REFERENCE_RUNNING + REFERENCE_POST_PROCESSING + REFERENCE_TERMINAL) == sorted(
        REFERENCE
    )
    assert sorted(s.value for s in ALL if s.is_terminal()) == sorted(REFERENCE_TERMINAL)


def test_the_table_covers_every_status_and_names_only_statuses() -> None:
    assert set(TRANSITIONS) == set(ALL)
    for targets in TRANSITIONS.values():
        assert targets <= set(ALL)


@pytest.mark.parametrize("status", ALL, ids=str)
def test_nothing_leaves_a_terminal_status(status: RunStatus) -> None:
    if not status.is_terminal():
        return
    assert not TRANSITIONS[status]
    assert [s for s in ALL if can_transition(status, s)] == [status]


@pytest.mark.parametrize("status", LIVE, ids=str)
def test_every_live_status_can_reach_an_end(status: RunStatus) -> None:
    reach = reachable(status)
    # it can fail, be canceled and lose its heartbeat from wherever it is, directly
    assert {RunStatus.FAILED, RunStatus.CANCELED, RunStatus.NOT_RESPONDING} - {status} <= set(
        TRANSITIONS[status]
    )
    assert {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELED} <= reach


def test_every_status_is_reachable_from_not_started_and_from_queued() -> None:
    assert reachable(RunStatus.NOT_STARTED) == set(ALL)
    # ferry creates runs Queued: every status but NotStarted must be reachable from there
    assert reachable(RunStatus.QUEUED) == set(ALL) - {RunStatus.NOT_STARTED}


def test_every_pair_obeys_the_ordering_rules() -> None:
    """All 225 pairs, each against the rule that governs it (not a sample of edges)."""
    before_running = {"NotStarted", "Unapproved", "Provisioning", "Queued", "Preparing"}
    after_start = {"Running", "Pausing", "Paused", "CancelRequested", "Finalizing"}
    for a in ALL:
        for b in ALL:
            allowed = can_transition(a, b)
            if a == b:
                assert allowed
            elif a.is_terminal() or b.value == "NotStarted":
                assert not allowed, (a, b)
            elif a.value in after_start and b.value in before_running - {"Queued"}:
                assert not allowed, (a, b)  # nothing goes back to before it was started
            elif a.value == "CancelRequested":
                assert allowed == (b.value in {"Finalizing", "Canceled", "Failed", "NotResponding"})
            elif b.value == "Paused":
                assert allowed == (a.value in {"Pausing", "NotResponding"}), (a, b)
            elif b.value == "Pausing":
                assert allowed == (a.value in {"Running", "NotResponding"}), (a, b)
            elif a.value == "Pausing":
                ends = {"Failed", "Canceled", "CancelRequested", "NotResponding"}
                assert allowed == (b.value in {"Paused", *ends}), (a, b)
            elif b.value == "Completed":
                assert allowed == (a.value in {"Running", "Finalizing", "NotResponding"}), (a, b)


def test_the_happy_paths_of_the_reference_are_allowed() -> None:
    for path in (
        ["Queued", "Preparing", "Starting", "Running", "Finalizing", "Completed"],
        ["NotStarted", "Starting", "Provisioning", "Preparing", "Queued", "Running", "Completed"],
        ["NotStarted", "Unapproved", "Queued", "Running", "Pausing", "Paused", "Queued"],
        ["Running", "Pausing", "Paused", "Running", "CancelRequested", "Canceled"],
        ["Queued", "Unapproved", "Provisioning", "Preparing", "Starting", "Running"],
        ["Running", "NotResponding", "Running", "Finalizing", "NotResponding", "Failed"],
    ):
        for a, b in pairwise(path):
            assert can_transition(RunStatus(a), RunStatus(b)), (a, b)
    assert not can_transition(RunStatus.CANCEL_REQUESTED, RunStatus.RUNNING)
    assert not can_transition(RunStatus.RUNNING, RunStatus.QUEUED)
    assert not can_transition(RunStatus.NOT_RESPONDING, RunStatus.UNAPPROVED)


def test_parse_status_names_allowed_values() -> None:
    assert parse_status("completed") is RunStatus.COMPLETED
    assert parse_status(" paused ") is RunStatus.PAUSED
    with pytest.raises(ConfigError, match=r"use one of: NotStarted.*Paused"):
        parse_status("done")
