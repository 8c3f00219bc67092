"""Run statuses of the reference and the transition table the store enforces (pure).

The reference's 15 strings (``azureml._restclient.constants.RunStatus``), in its order. Its
meaning of each: NotStarted (client side, before submission), Unapproved (waiting for quota or
approval), Provisioning (on-demand compute is being created), Preparing (the environment is being
built), Queued (waiting for nodes), Starting, Running, Pausing and Paused (a paused run may be
resumed), CancelRequested and Finalizing (post-processing), Completed, Failed and Canceled
(terminal), NotResponding (heartbeats missing).
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """A run's status; the values are the reference's strings."""

    NOT_STARTED = "NotStarted"
    QUEUED = "Queued"
    PREPARING = "Preparing"
    PROVISIONING = "Provisioning"
    STARTING = "Starting"
    RUNNING = "Running"
    CANCEL_REQUESTED = "CancelRequested"
    CANCELED = "Canceled"
    FINALIZING = "Finalizing"
    COMPLETED = "Completed"
    FAILED = "Failed"
    UNAPPROVED = "Unapproved"
    NOT_RESPONDING = "NotResponding"
    PAUSING = "Pausing"
    PAUSED = "Paused"

    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELED})

_S = RunStatus
#: a live run may always fail, be asked to stop, be stopped at once or lose its heartbeat
_ENDINGS = {_S.FAILED, _S.CANCELED, _S.CANCEL_REQUESTED, _S.NOT_RESPONDING}

#: from-status -> statuses it may move to. Anything not listed is refused by the store.
TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    _S.NOT_STARTED: frozenset(
        {_S.UNAPPROVED, _S.PROVISIONING, _S.QUEUED, _S.PREPARING, _S.STARTING, _S.RUNNING}
        | _ENDINGS
    ),
    # ferry creates a run Queued at submit, so waiting for approval or for compute starts there
    _S.UNAPPROVED: frozenset({_S.PROVISIONING, _S.QUEUED, _S.PREPARING, _S.STARTING} | _ENDINGS),
    _S.PROVISIONING: frozenset({_S.QUEUED, _S.PREPARING, _S.STARTING, _S.RUNNING} | _ENDINGS),
    _S.QUEUED: frozenset(
        {_S.UNAPPROVED, _S.PROVISIONING, _S.PREPARING, _S.STARTING, _S.RUNNING} | _ENDINGS
    ),
    # Preparing → Queued: the reference's order (Preparing, then Queued while waiting for nodes)
    _S.PREPARING: frozenset({_S.QUEUED, _S.STARTING, _S.RUNNING} | _ENDINGS),
    # Starting → Provisioning: the reference's order (the run id exists, then compute is made)
    _S.STARTING: frozenset({_S.PROVISIONING, _S.RUNNING, _S.FINALIZING} | _ENDINGS),
    _S.RUNNING: frozenset({_S.PAUSING, _S.FINALIZING, _S.COMPLETED} | _ENDINGS),
    _S.PAUSING: frozenset({_S.PAUSED} | _ENDINGS),
    # a paused run resumes where it can get nodes again (Queued) or at once (Running)
    _S.PAUSED: frozenset({_S.QUEUED, _S.RUNNING} | _ENDINGS),
    _S.CANCEL_REQUESTED: frozenset({_S.FINALIZING, _S.CANCELED, _S.FAILED, _S.NOT_RESPONDING}),
    _S.FINALIZING: frozenset({_S.COMPLETED, _S.FAILED, _S.CANCELED, _S.NOT_RESPONDING}),
    # heartbeats came back: the run resumes whatever it was doing (never before it was approved)
    _S.NOT_RESPONDING: frozenset(
        {
            _S.PROVISIONING,
            _S.QUEUED,
            _S.PREPARING,
            _S.STARTING,
            _S.RUNNING,
            _S.PAUSING,
            _S.PAUSED,
            _S.FINALIZING,
            _S.COMPLETED,
        }
        | _ENDINGS
    ),
    _S.COMPLETED: frozenset(),
    _S.FAILED: frozenset(),
    _S.CANCELED: frozenset(),
}


def reachable(start: RunStatus) -> set[RunStatus]:
    """Every status a run in ``start`` can come to through the table (``start`` included)."""
    seen, todo = {start}, [start]
    while todo:
        for nxt in TRANSITIONS[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


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
