"""A sweep survives its controller being killed (kill -9), or ends Failed with the reason."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from sweep_helpers import poll, sweep_config

from ferry import Experiment, Workspace
from ferry.hyperdrive import HyperDriveRun
from ferry.liveness import check
from ferry.status import RunStatus


def _controller_pid(workspace: Workspace, sweep_id: str) -> int:
    """The running controller's pid (it records itself on the sweep run)."""
    return int(
        poll(lambda: workspace.store.get_run(sweep_id).supervisor_pid, what="the controller")
    )


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[1])


def _children_started(run: HyperDriveRun, count: int) -> bool:
    return len(list(run.get_children())) >= count


def _log(run: HyperDriveRun) -> str:
    return (run.run_dir / "user_logs" / "std_log.txt").read_text(encoding="utf-8")


def test_a_killed_controller_is_restarted_and_resumes_where_it_was(
    workspace: Workspace, experiment: Experiment, source: Path, fake: Callable[..., str]
) -> None:
    fake(run_seconds=0.5)
    run = experiment.submit(sweep_config(source, max_total_runs=6, max_concurrent_runs=2))
    poll(lambda: _children_started(run, 2), what="two children")
    first = _controller_pid(workspace, run.id)
    os.kill(first, signal.SIGKILL)
    details = run.wait_for_completion(timeout_seconds=120)
    assert details["status"] == "Completed"
    assert workspace.store.get_run(run.id).supervisor_pid != first
    ids = [c.id for c in run.get_children()]
    assert ids == [f"{run.id}_{n}" for n in range(6)]  # none twice, none lost
    assert all(c.get_status() == "Completed" for c in run.get_children())
    assert len(run.get_hyperparameters()) == 6
    assert "a new controller" in _log(run) and "resumes the sweep" in _log(run)


def test_a_controller_that_keeps_dying_fails_the_sweep_with_the_reason(
    workspace: Workspace,
    experiment: Experiment,
    source: Path,
    fake: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FERRY_SWEEP_MAX_RESTARTS", "0")
    fake(run_seconds=30)
    run = experiment.submit(sweep_config(source, max_total_runs=4, max_concurrent_runs=2))
    poll(lambda: _children_started(run, 1), what="a child")
    os.kill(_controller_pid(workspace, run.id), signal.SIGKILL)
    details = run.wait_for_completion(raise_on_error=False, timeout_seconds=60)
    assert details["status"] == "Failed"
    assert details["error"]["error"]["code"] == "ControllerLost"
    assert "killed by signal 9" in details["error"]["error"]["message"]
    poll(
        lambda: all(c.get_status() == "Canceled" for c in run.get_children()),
        what="the children to be canceled",
    )


def test_a_killed_keeper_is_replaced_by_the_controller(
    workspace: Workspace, experiment: Experiment, source: Path, fake: Callable[..., str]
) -> None:
    fake(run_seconds=0.4)
    run = experiment.submit(sweep_config(source, max_total_runs=5, max_concurrent_runs=1))
    controller = _controller_pid(workspace, run.id)
    os.kill(_parent(controller), signal.SIGKILL)
    poll(lambda: "a new one stands by" in _log(run), what="a new keeper")
    os.kill(controller, signal.SIGKILL)  # the new keeper's standby controller takes over
    assert run.wait_for_completion(timeout_seconds=120)["status"] == "Completed"
    assert [c.get_status() for c in run.get_children()] == ["Completed"] * 5


def test_a_sweep_whose_processes_all_died_is_resumed_by_its_next_reader(
    workspace: Workspace, experiment: Experiment, source: Path, fake: Callable[..., str]
) -> None:
    fake(run_seconds=0.4)
    run = experiment.submit(sweep_config(source, max_total_runs=5, max_concurrent_runs=1))
    poll(lambda: _children_started(run, 1), what="a child")
    controller = _controller_pid(workspace, run.id)
    keeper = _parent(controller)
    os.kill(keeper, signal.SIGKILL)
    os.kill(controller, signal.SIGKILL)  # as a reboot would: nothing drives the sweep now
    again = HyperDriveRun.get(workspace, run.id)
    assert again.wait_for_completion(timeout_seconds=120)["status"] == "Completed"
    assert len(list(again.get_children())) == 5


def test_a_sweep_nobody_resumes_ends_failed_never_stuck_running(
    workspace: Workspace, experiment: Experiment, source: Path, fake: Callable[..., str]
) -> None:
    fake(run_seconds=30)
    run = experiment.submit(sweep_config(source, max_total_runs=3, max_concurrent_runs=1))
    poll(lambda: _children_started(run, 1), what="a child")
    controller = _controller_pid(workspace, run.id)
    os.kill(_parent(controller), signal.SIGKILL)
    os.kill(controller, signal.SIGKILL)
    store = workspace.store  # a plain reader (ferry runs list) only judges heartbeats

    def failed() -> bool:
        return check(store, store.get_run(run.id)).status == RunStatus.FAILED

    poll(failed, what="the sweep to be marked Failed")
    error = workspace.store.get_run(run.id).error or {}
    assert "stopped sending heartbeats" in error["error"]["message"]
    assert workspace.store.get_run(run.id).status == RunStatus.FAILED
    HyperDriveRun.get(workspace, run.id)  # a sweep handle tidies up: an ended sweep runs nothing
    poll(
        lambda: all(c.get_status() == "Canceled" for c in run.get_children()),
        what="the ended sweep's children to be canceled",
    )
