"""Run statuses of the reference and the transition table the store enforces (pure)."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """A run's status; the values are the reference's strings."""

    NOT_STARTED = "NotStarted"
    QUEUED = "Queued"
    PREPARING = "Preparing"
    STARTING = "Starting"
    RUNNING = "Running"
    CANCEL_REQUESTED = "CancelRequested"
    FINALIZING = "Finalizing"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"
    NOT_RESPONDING = "NotResponding"

    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELED})

_S = RunStatus
_ENDINGS = {_S.FAILED, _S.CANCELED, _S.CANCEL_REQUESTED, _S.NOT_RESPONDING}

#: from-status -> statuses it may move to. Anything not listed is refused by the store.
TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    _S.NOT_STARTED: frozenset({_S.QUEUED, _S.PREPARING, _S.STARTING, _S.RUNNING} | _ENDINGS),
    _S.QUEUED: frozenset({_S.PREPARING, _S.STARTING, _S.RUNNING} | _ENDINGS),
    # Preparing → Queued: the reference's order (Preparing, then Queued while waiting for nodes)
    _S.PREPARING: frozenset({_S.QUEUED, _S.STARTING, _S.RUNNING} | _ENDINGS),
    _S.STARTING: frozenset({_S.RUNNING, _S.FINALIZING} | _ENDINGS),
    _S.RUNNING: frozenset({_S.FINALIZING, _S.COMPLETED} | _ENDINGS),
    _S.CANCEL_REQUESTED: frozenset({_S.FINALIZING, _S.CANCELED, _S.FAILED, _S.NOT_RESPONDING}),
    _S.FINALIZING: frozenset({_S.COMPLETED, _S.FAILED, _S.CANCELED, _S.NOT_RESPONDING}),
    _S.NOT_RESPONDING: frozenset(
        {_S.PREPARING, _S.STARTING, _S.RUNNING, _S.FINALIZING, _S.COMPLETED} | _ENDINGS
    ),
    _S.COMPLETED: frozenset(),
    _S.FAILED: frozenset(),
    _S.CANCELED: frozenset(),
}


def can_transition(current: RunStatus, new: RunStatus) -> bool:
    """True when the table allows ``current -> new`` (staying put is always allowed)."""
    return current == new or new in TRANSITIONS[current]


def parse_status(value: str) -> RunStatus:
    """Parse a status string, case-insensitively, naming the allowed values on error."""
    for status in RunStatus:
        if status.value.lower() == value.strip().lower():
            return status
    from ferry.errors import ConfigError

    allowed = ", ".join(s.value for s in RunStatus)
    raise ConfigError(f"unknown run status {value!r}; use one of: {allowed}")
