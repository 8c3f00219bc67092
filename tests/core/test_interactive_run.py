"""An interactive run is an explicit ``InteractiveRun(Run)``: batched metrics, the runtime's
child runs, the same checks as every run, and a fetched handle may log beside it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ferry import Experiment, Run, Workspace
from ferry.errors import LogTypeError
from ferry.interactive import InteractiveRun


def test_start_logging_returns_an_interactive_run_and_get_a_plain_one(
    workspace: Workspace,
) -> None:
    exp = Experiment(workspace, "nb")
    with exp.start_logging(snapshot_directory=None, outputs=False) as run:
        assert type(run) is InteractiveRun
        assert type(Run.get(workspace, run.id)) is Run
        with pytest.raises(LogTypeError, match=r"Use run\.log_list instead"):
            run.log("x", [1, 2])
        run.flush()
        assert run.get_metrics() == {}  # the refused value was never queued
        with run.child_run("fold-1") as child:
            child.log("acc", 0.9)
        kids = run.create_children(count=2)
        for kid in kids:
            kid.complete()
    assert run.get_status() == "Completed"
    children = list(run.get_children())
    assert children[0].display_name == "fold-1" and len(children) == 3
    assert run.get_metrics(recursive=True)[children[0].id] == {"acc": 0.9}


def test_a_fetched_handle_logs_while_the_notebook_logs(
    workspace: Workspace, awkward_dir: Path
) -> None:
    exp = Experiment(workspace, "nb")
    run = exp.start_logging(snapshot_directory=None, outputs=False)
    fetched = Run.get(workspace, run.id)
    started = threading.Event()

    def notebook() -> None:
        for i in range(20_000):
            run.log("notebook", i)
            if i == 100:
                started.set()

    thread = threading.Thread(target=notebook)
    thread.start()
    assert started.wait(30)
    for i in range(200):
        fetched.log("driver", i)
    (awkward_dir / "f.txt").write_text("f")
    fetched.upload_file("from driver.txt", awkward_dir / "f.txt")
    thread.join(60)
    run.complete()
    metrics = run.get_metrics()
    assert metrics["notebook"] == list(range(20_000))
    assert metrics["driver"] == list(range(200))
    assert run.get_file_names() == ["from driver.txt"]
