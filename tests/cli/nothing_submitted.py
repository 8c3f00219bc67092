"""What the bad-input tests check after a refused submit: it left no run behind."""

from __future__ import annotations

from typing import Any


def assert_no_runs(ferry: Any) -> None:
    """The fixture's workspace lists no runs — or was never made: a refused submit may stop
    before it opens one, and ``runs list`` refuses a ``-w`` folder that holds no workspace."""
    listed = ferry("runs", "list", "--json").json()
    if isinstance(listed, dict):
        assert "there is no ferry workspace in" in listed["error"], listed
    else:
        assert listed == []
