"""An interactive run (``Experiment.start_logging()``) releases its threads and files on completion.

A notebook that logs thousands of runs one after another must not keep a thread and an open spool
file per finished run (the process would slow to a crawl and run out of descriptors).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from pathlib import Path

import pytest

from ferry import Experiment, Workspace
from ferry.runtime import spool as runtime_spool

RUNS = 300


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _ferry_threads(before: set[int | None]) -> list[threading.Thread]:
    """ferry's threads started since ``before`` (other tests may have left theirs)."""
    return [
        t for t in threading.enumerate() if t.name.startswith("ferry-") and t.ident not in before
    ]


def _idents() -> set[int | None]:
    return {t.ident for t in threading.enumerate()}


def test_three_hundred_interactive_runs_leave_no_thread_or_file_behind(
    workspace: Workspace, awkward_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(awkward_dir)
    experiment = Experiment(workspace, "notebook")
    before = _idents()
    durations: list[float] = []
    baseline_fds: set[str] = set()
    for i in range(RUNS):
        started = time.perf_counter()
        run = experiment.start_logging(snapshot_directory=None, outputs=None)
        run.log("step", i)
        run.tag("i", str(i))
        run.complete()
        durations.append(time.perf_counter() - started)
        assert run.get_status() == "Completed"
        if i == 4:  # the store's connections are open by now
            baseline_fds = _open_fds()
            baseline_threads = len(threading.enumerate())
    assert run.get_metrics() == {"step": RUNS - 1}
    assert _ferry_threads(before) == []
    assert len(threading.enumerate()) <= baseline_threads
    assert len(_open_fds() - baseline_fds) <= 2, sorted(_open_fds() - baseline_fds)
    live_spools = [w for w in runtime_spool._live if str(workspace.path) in w.spool_dir]
    assert live_spools == []
    # the last runs cost what the first ones did (after warm-up), not more
    early = statistics.median(durations[5:35])
    late = statistics.median(durations[-30:])
    assert late < 3 * early + 0.02, f"first runs {early * 1e3:.1f} ms, last {late * 1e3:.1f} ms"


def test_a_value_logged_after_completion_is_recorded_and_holds_nothing(
    workspace: Workspace, awkward_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(awkward_dir)
    experiment = Experiment(workspace, "notebook")
    before = _idents()
    with experiment.start_logging(snapshot_directory=None, outputs=None) as run:
        run.log("loss", 0.5)
    fds = _open_fds()
    run.log("loss", 0.25)
    run.tag("late", "yes")
    assert run.get_metrics() == {"loss": [0.5, 0.25]}
    assert run.get_tags()["late"] == "yes"
    assert _ferry_threads(before) == []
    assert _open_fds() <= fds
    assert run.get_status() == "Completed"
