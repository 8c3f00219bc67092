"""The supervisor beats through every phase (a long preparation: test_supervisor_fake.py)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from ferry import Workspace


def test_after_a_not_responding_spell_the_run_returns_to_its_own_phase(
    workspace: Workspace,
) -> None:
    from ferry.status import RunStatus
    from ferry.supervisor import Heartbeat
    from ferry.tracking import RunRecord

    store = workspace.store
    store.create_run(RunRecord(id="hb_1_abcdef12", experiment="hb", status=RunStatus.QUEUED))
    store.set_status("hb_1_abcdef12", RunStatus.PREPARING)
    store.set_status("hb_1_abcdef12", RunStatus.NOT_RESPONDING)  # a reader judged it stale
    beat = Heartbeat(store, "hb_1_abcdef12", lambda: RunStatus.PREPARING)
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
    from ferry.supervisor import Supervisor, _PrepareContext
    from ferry.tracking import RunRecord

    store = workspace.store
    store.create_run(RunRecord(id="q_1_abcdef12", experiment="q", status=RunStatus.QUEUED))
    sup = Supervisor(workspace, "q_1_abcdef12")
    sup._status(RunStatus.PREPARING)
    log = _PrepareContext(sup)
    log.log("ferry: building the environment")
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


def test_a_silent_supervisor_is_judged_by_whether_its_process_lives() -> None:
    """Dead: Failed after 6 intervals. Alive but silent (a loaded machine stalls a beat): only
    NotResponding until a minute has passed. Unknown (another host): after 12 intervals."""
    from ferry.liveness import LIVE_SILENCE_SECONDS, heartbeat_verdict
    from ferry.status import RunStatus
    from ferry.tracking import RunRecord

    record = RunRecord(id="hb_2_abcdef12", experiment="hb", status=RunStatus.RUNNING)
    beat = RunRecord(**{**record.__dict__, "heartbeat_at": 1000.0})

    def verdict(age: float, alive: bool | None) -> RunStatus | None:
        return heartbeat_verdict(beat, 1000.0 + age, 0.3, alive).status

    assert verdict(0.5, False) is None
    assert verdict(1.0, None) == RunStatus.NOT_RESPONDING
    assert verdict(2.0, False) == RunStatus.FAILED
    assert verdict(4.0, None) == RunStatus.FAILED
    assert verdict(4.0, True) == RunStatus.NOT_RESPONDING
    assert verdict(LIVE_SILENCE_SECONDS - 1, True) == RunStatus.NOT_RESPONDING
    assert verdict(LIVE_SILENCE_SECONDS + 1, True) == RunStatus.FAILED


def test_a_run_no_supervisor_has_started_yet_stays_queued_until_a_live_silence() -> None:
    """Recorded, not yet taken up (its start is slow on a loaded machine, or it waits for a
    server's free supervisor): no NotResponding, no Failed before a minute; then Failed, saying
    that nothing started it."""
    from ferry.liveness import LIVE_SILENCE_SECONDS, heartbeat_verdict
    from ferry.status import RunStatus
    from ferry.tracking import RunRecord

    queued = RunRecord(
        id="hb_3_abcdef12", experiment="hb", status=RunStatus.QUEUED, heartbeat_at=1000.0
    )
    for age in (1.0, 4.0, LIVE_SILENCE_SECONDS - 1):
        assert heartbeat_verdict(queued, 1000.0 + age, 0.3, None).status is None, age
    late = heartbeat_verdict(queued, 1000.0 + LIVE_SILENCE_SECONDS + 1, 0.3, None)
    assert late.status == RunStatus.FAILED
    assert "no supervisor ever started it" in late.reason and "rerun" in late.reason
    started = RunRecord(**{**queued.__dict__, "supervisor_pid": 4242})  # its supervisor is up
    assert heartbeat_verdict(started, 1004.0, 0.3, False).status == RunStatus.FAILED


def test_a_supervisor_judges_the_other_runs_even_when_its_own_is_short(
    workspace: Workspace, awkward_dir: Path
) -> None:
    """Once per supervisor, every run that is not over is judged (a run whose supervisor died
    is found though nobody lists it): at its first beat, or after a short run's end — never
    while the run starts."""
    import subprocess
    import sys

    from ferry import Experiment, ScriptRunConfig
    from ferry.status import RunStatus
    from ferry.tracking import RunRecord

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    store = workspace.store
    store.create_run(
        RunRecord(
            id="dead_1_abcdef12",
            experiment="dead",
            status=RunStatus.QUEUED,
            created_at=time.time() - 600,
            heartbeat_at=time.time() - 600,
        )
    )
    store.set_status("dead_1_abcdef12", RunStatus.RUNNING)
    store.update_run("dead_1_abcdef12", supervisor_pid=gone.pid, host=socket.gethostname())
    source = awkward_dir / "short"
    source.mkdir()
    (source / "hello.py").write_text("print('hello')\n")
    run = Experiment(workspace, "short").submit(ScriptRunConfig(str(source), "hello.py"))
    assert run.wait_for_completion()["status"] == "Completed"
    deadline = time.monotonic() + 30
    while store.get_run("dead_1_abcdef12").status != RunStatus.FAILED:  # the store: no judging
        assert time.monotonic() < deadline, store.get_run("dead_1_abcdef12").status
        time.sleep(0.05)
    assert "stopped sending heartbeats" in str(store.get_run("dead_1_abcdef12").error)
