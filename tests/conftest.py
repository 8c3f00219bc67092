"""Shared fixtures: an isolated workspace in an awkward path, fast heartbeats."""

from __future__ import annotations

from pathlib import Path

import pytest

AWKWARD = "wörk space 'q' \"dq\""


@pytest.fixture
def awkward_dir(tmp_path: Path) -> Path:
    """A folder whose path has spaces, quotes and non-ASCII characters."""
    path = tmp_path / AWKWARD
    path.mkdir()
    return path


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERRY_HOME", str(tmp_path / "ferry home ü"))
    monkeypatch.setenv("FERRY_HEARTBEAT_SECONDS", "0.3")
    monkeypatch.setenv("FERRY_KILL_GRACE_SECONDS", "2")
    monkeypatch.delenv("FERRY_WORKSPACE", raising=False)
    monkeypatch.delenv("FERRY_DATABASE_URL", raising=False)


@pytest.fixture
def workspace(awkward_dir: Path):  # type: ignore[no-untyped-def]
    from ferry.workspace import Workspace

    ws = Workspace.create(awkward_dir / "ws")
    yield ws
    ws.store.close()
