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


def test_after_a_not_responding_spell_the_run_returns_to_its_own_phase(
    workspace: Workspace,
) -> None:
    from ferry.status import RunStatus
    from ferry.supervisor import _Heartbeat
    from ferry.tracking import RunRecord

    store = workspace.store
    store.create_run(RunRecord(id="hb_1_abcdef12", experiment="hb", status=RunStatus.QUEUED))
    store.set_status("hb_1_abcdef12", RunStatus.PREPARING)
    store.set_status("hb_1_abcdef12", RunStatus.NOT_RESPONDING)  # a reader judged it stale
    beat = _Heartbeat(store, "hb_1_abcdef12", lambda: RunStatus.PREPARING)
    beat.start()
    try:
        deadline = time.monotonic() + 10
        while store.get_run("hb_1_abcdef12").status != RunStatus.PREPARING:
            assert time.monotonic() < deadline, store.get_run("hb_1_abcdef12").status
            time.sleep(0.05)
    finally:
        beat.stop()
    store.set_status("hb_1_abcdef12", RunStatus.STARTING)  # the next step is still allowed


def test_a_target_waiting_for_resources_shows_the_run_queued_with_the_reason(
    workspace: Workspace,
) -> None:
    from ferry.run import Run
    from ferry.status import RunStatus
    from ferry.supervisor import Supervisor, _PrepareLog
    from ferry.tracking import RunRecord

    store = workspace.store
    store.create_run(RunRecord(id="q_1_abcdef12", experiment="q", status=RunStatus.QUEUED))
    sup = Supervisor(workspace, "q_1_abcdef12")
    sup._status(RunStatus.PREPARING)
    log = _PrepareLog(sup)
    log("ferry: building the environment")
    log.waiting("waiting for cluster resources: the run needs 1 × {GPU 1}; free now: CPU 2")
    run = Run.get(workspace, "q_1_abcdef12")
    assert run.get_detailed_status() == {
        "status": "Queued",
        "details": "waiting for cluster resources: the run needs 1 × {GPU 1}; free now: CPU 2",
    }
    log.resumed()
    assert run.get_detailed_status() == {"status": "Preparing", "details": ""}
    text = (workspace.runs_dir / "q_1_abcdef12" / "user_logs" / "std_log.txt").read_text()
    assert "building the environment" in text and "waiting for cluster resources" in text
