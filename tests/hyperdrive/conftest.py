"""Sweep fixtures: a source folder in an awkward path, fake targets, an experiment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ferry import ComputeTarget, Experiment, Workspace
from ferry.testing.fake import FakeCompute

#: what the fake target's "job" logs: three values of acc, and a loss
SPOOL = [
    {"k": "metric", "name": "acc", "value": 0.5},
    {"k": "metric", "name": "acc", "value": 0.9},
    {"k": "metric", "name": "acc", "value": 0.7},
    {"k": "metric", "name": "loss", "value": 1.5},
]


@pytest.fixture
def source(awkward_dir: Path) -> Path:
    folder = awkward_dir / "src 'sweep'"
    folder.mkdir()
    (folder / "train.py").write_text("print('hi')\n", encoding="utf-8")
    return folder


@pytest.fixture
def fake(workspace: Workspace) -> Callable[..., str]:
    """Attach a fake target with a script; returns its name."""

    def attach(name: str = "fake", **script: Any) -> str:
        script.setdefault("spool", SPOOL)
        ComputeTarget.attach(workspace, name, FakeCompute.attach_configuration(**script))
        return name

    return attach


@pytest.fixture
def experiment(workspace: Workspace) -> Experiment:
    return Experiment(workspace, "sweeps")
