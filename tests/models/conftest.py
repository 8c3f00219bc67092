"""The model tests share the data tests' helpers (services, job script)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "data"))

import pytest
from helpers import write_files


@pytest.fixture
def sample(awkward_dir: Path) -> Path:
    return write_files(awkward_dir / "sample data", {"a.csv": "x,y\n1,2\n", "b.csv": "x,y\n3,4\n"})
