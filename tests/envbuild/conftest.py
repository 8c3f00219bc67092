"""Fixtures for environment builds: a build cache shared by the tests of a module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

AWKWARD_ROOT = "envs wörk 'q'"


@pytest.fixture(scope="module")
def envs_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A build cache in an awkward path, shared by the tests of one module (builds are slow)."""
    yield tmp_path_factory.mktemp("envbuild") / AWKWARD_ROOT
