"""Run statuses and the transition table (pure)."""

from __future__ import annotations

from itertools import pairwise

import pytest

from ferry.errors import ConfigError
from ferry.status import TRANSITIONS, RunStatus, can_transition, parse_status


def test_statuses_are_the_reference_strings() -> None:
    assert [s.value for s in RunStatus] == [
        "NotStarted", "Queued", "Preparing", "Starting", "Running", "CancelRequested",
        "Finalizing", "Completed", "Failed", "Canceled", "NotResponding",
    ]  # fmt: skip


def test_terminal_statuses_go_nowhere() -> None:
    for status in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELED):
        assert status.is_terminal()
        assert not TRANSITIONS[status]
        assert not can_transition(status, RunStatus.RUNNING)


def test_the_happy_path_and_cancel_path_are_allowed() -> None:
    path = ["Queued", "Preparing", "Starting", "Running", "Finalizing", "Completed"]
    for a, b in pairwise(path):
        assert can_transition(RunStatus(a), RunStatus(b))
    assert can_transition(RunStatus.RUNNING, RunStatus.CANCEL_REQUESTED)
    assert can_transition(RunStatus.CANCEL_REQUESTED, RunStatus.CANCELED)
    assert not can_transition(RunStatus.CANCEL_REQUESTED, RunStatus.RUNNING)
    assert can_transition(RunStatus.RUNNING, RunStatus.NOT_RESPONDING)
    assert can_transition(RunStatus.NOT_RESPONDING, RunStatus.FAILED)
    # the reference's order: Preparing, then Queued while waiting for nodes, then back
    assert can_transition(RunStatus.PREPARING, RunStatus.QUEUED)
    assert can_transition(RunStatus.QUEUED, RunStatus.PREPARING)
    assert not can_transition(RunStatus.RUNNING, RunStatus.QUEUED)


def test_parse_status_names_allowed_values() -> None:
    assert parse_status("completed") is RunStatus.COMPLETED
    with pytest.raises(ConfigError, match="use one of: NotStarted"):
        parse_status("done")
