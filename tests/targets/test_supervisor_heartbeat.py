"""The supervisor beats through every phase: a long preparation is not mistaken for a dead run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from ferry import Experiment, ScriptRunConfig, Workspace
from ferry.targets.local import LocalTarget


def test_a_long_preparation_keeps_the_run_alive(
    workspace: Workspace, awkward_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = LocalTarget.prepare

    def slow_prepare(self: LocalTarget, job: Any, log: Any) -> Any:
        time.sleep(5)  # longer than the dead-run threshold at 0.3 s heartbeats (3.6 s)
        return original(self, job, log)

    monkeypatch.setattr(LocalTarget, "prepare", slow_prepare)  # the forked supervisor inherits it
    # the supervisor must be forked (a spawned one would not see the patch), even when earlier
    # tests left threads behind in this process
    import threading

    main_only = threading.main_thread()
    monkeypatch.setattr(threading, "enumerate", lambda: [main_only])
    monkeypatch.delenv("FERRY_SUPERVISOR_SPAWN", raising=False)
    src = awkward_dir / "src"
    src.mkdir()
    (src / "t.py").write_text("print('ran')\n")
    run = Experiment(workspace, "slowprep").submit(ScriptRunConfig(str(src), "t.py"))
    seen = set()
    while run.get_status() not in ("Completed", "Failed", "Canceled"):
        seen.add(run.get_status())
        time.sleep(0.1)
    assert "NotResponding" not in seen and "Preparing" in seen
    assert run.get_status() == "Completed"
