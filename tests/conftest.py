"""Shared fixtures: an isolated workspace in an awkward path, fast heartbeats."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

AWKWARD = "wörk space 'q' \"dq\""


@pytest.fixture
def awkward_dir(tmp_path: Path) -> Path:
    """A folder whose path has spaces, quotes and non-ASCII characters."""
    path = tmp_path / AWKWARD
    path.mkdir()
    return path


@pytest.fixture(autouse=True, scope="session")
def _private_zygotes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The suite's warm zygotes live in a folder of its own and are stopped at the end (tests
    use them, as users do: commands and supervisors start from them)."""
    folder = tmp_path_factory.mktemp("zygotes") / "z"
    folder.mkdir(mode=0o700)
    old = os.environ.get("FERRY_ZYGOTE_DIR")
    os.environ["FERRY_ZYGOTE_DIR"] = str(folder)
    yield
    if old is None:
        os.environ.pop("FERRY_ZYGOTE_DIR", None)
    else:
        os.environ["FERRY_ZYGOTE_DIR"] = old
    for pid_file in folder.glob("*.pid"):
        try:
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        except (OSError, ValueError):
            pass


@pytest.fixture(autouse=True)
def _isolated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.setenv("FERRY_HOME", str(tmp_path / "ferry home ü"))
    monkeypatch.setenv("FERRY_HEARTBEAT_SECONDS", "0.3")
    monkeypatch.setenv("FERRY_KILL_GRACE_SECONDS", "2")
    monkeypatch.delenv("FERRY_WORKSPACE", raising=False)
    monkeypatch.delenv("FERRY_DATABASE_URL", raising=False)
    if "docker_engine" not in request.fixturenames:  # no engine unless a test starts one
        monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-docker-engine.sock'}")


@pytest.fixture
def workspace(awkward_dir: Path):  # type: ignore[no-untyped-def]
    from ferry.workspace import Workspace

    ws = Workspace.create(awkward_dir / "ws")
    yield ws
    ws.store.close()
