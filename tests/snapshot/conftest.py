"""Fixtures for the snapshot tests: awkward file names everywhere, stores, a git sandbox."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from snapshot_helpers import AWKWARD_DIRS, AWKWARD_NAMES, age, write

from ferry.snapshot import LocalBlobStore, MemoryBlobStore


@pytest.fixture(autouse=True)
def _no_snapshot_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Limits and git overrides from the developer's shell must not leak into tests."""
    for key in list(os.environ):
        if key.startswith(("FERRY_GIT_", "AZUREML_GIT_", "FERRY_SNAPSHOT_")):
            monkeypatch.delenv(key)


@pytest.fixture
def awkward_tree(tmp_path: Path) -> Path:
    """A source folder whose every file and folder has an awkward name.

    Holds text files, an executable script, an empty file and a binary file, at the root and in
    nested awkward folders; all mtimes are a minute old.
    """
    root = tmp_path / "source tree 'x'"
    for i, name in enumerate(AWKWARD_NAMES):
        write(root / name, f"line one of {name!r}\nline {i}\n")
    for d in AWKWARD_DIRS:
        for name in AWKWARD_NAMES[:4]:
            write(root / d / AWKWARD_DIRS[0] / name, f"nested {d!r}/{name!r}\n")
    write(root / "run me.sh", "#!/bin/sh\necho hi\n", mode=0o755)
    write(root / "empty", b"")
    write(root / "data.bin", bytes(range(256)) * 64)
    age(root)
    return root


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


@pytest.fixture
def memory_store() -> MemoryBlobStore:
    return MemoryBlobStore()


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "stat cache"


@pytest.fixture
def git_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A git identity and no user/system config, so tests do not depend on the machine."""
    values = {
        "GIT_AUTHOR_NAME": "Ferry Test",
        "GIT_AUTHOR_EMAIL": "test@ferry.invalid",
        "GIT_COMMITTER_NAME": "Ferry Test",
        "GIT_COMMITTER_EMAIL": "test@ferry.invalid",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(tmp_path / "home"),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    yield values
