"""RunDetails(run).show(): live text outside Jupyter, a live ipywidgets widget inside, on real
runs; children sorted by a metric."""

from __future__ import annotations

import io
import json
import re
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ferry import Experiment, Run, ScriptRunConfig, Workspace
from ferry.widgets import RunDetails, choose_view, svg_chart

PROGRESS = """\
import os, sys, time
from pathlib import Path
from azureml.core import Run
run = Run.get_context()
flag = Path(sys.argv[1])
for step in range(3):
    run.log("loss", 1.0 / (step + 1))
    print(f"phase one step {step}", flush=True)
deadline = time.monotonic() + 120
while not flag.exists() and time.monotonic() < deadline:
    time.sleep(0.05)
run.log("loss", 0.1)
run.log("accuracy", 0.97)
print("phase two", flush=True)
print("no newline at the end", end="")
"""


def _submit(ws: Workspace, folder: Path, body: str, *args: str) -> Run:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(textwrap.dedent(body), encoding="utf-8")
    config = ScriptRunConfig(str(folder), "train.py", arguments=list(args))
    return Experiment(ws, "widgets").submit(config)


def _poll(condition: Any, what: str, seconds: float = 60.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def test_outside_jupyter_show_prints_a_live_text_view_and_returns_when_the_run_ends(
    workspace: Workspace, awkward_dir: Path
) -> None:
    flag = awkward_dir / "go"
    run = _submit(workspace, awkward_dir / "text", PROGRESS, str(flag))
    out = io.StringIO()

    def release() -> None:
        """The job waits for the flag; it is set once the view has shown the run Running and its
        first lines (so the view is live, not a report written at the end)."""
        _poll(lambda: "phase one step 2" in out.getvalue(), "the first lines, live")
        flag.touch()

    releaser = threading.Thread(target=release)
    releaser.start()
    RunDetails(run).show(out=out)
    releaser.join()
    assert run.get_status() == "Completed", "show() returned only once the run had ended"
    lines = out.getvalue().splitlines()
    statuses = [line for line in lines if line.startswith("[RunDetails]")]
    assert len(set(statuses)) == len(statuses), "each status change once"
    running = lines.index(f"[RunDetails] {run.id}: Running")
    assert statuses[-1].startswith(f"[RunDetails] {run.id}: Completed after 00:00:")
    steps = [line for line in lines if line.startswith("phase one step")]
    assert steps == [f"phase one step {i}" for i in range(3)], "each log line once, in order"
    assert running < lines.index("phase one step 0") < lines.index("phase two")
    assert "no newline at the end" in lines
    metrics = lines[lines.index("Metrics") :]
    assert any(line.split() == ["loss", "0.1", "(last", "of", "4)"] for line in metrics)
    assert any(line.split() == ["accuracy", "0.97"] for line in metrics)


def test_show_writes_to_stdout_by_default(
    workspace: Workspace, awkward_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _submit(workspace, awkward_dir / "stdout", "print('hello from the job')\n")
    RunDetails(run).show()
    out = capsys.readouterr().out
    assert "hello from the job\n" in out and f"{run.id}: Completed after" in out


def test_in_jupyter_the_widget_updates_live_until_the_run_ends(
    workspace: Workspace, awkward_dir: Path
) -> None:
    import ipywidgets

    flag = awkward_dir / "go"
    run = _submit(workspace, awkward_dir / "widget", PROGRESS, str(flag))
    details = RunDetails(run)
    details.refresh = 0.1
    box = details.widget()
    assert isinstance(box, ipywidgets.VBox)
    assert details.view is not None
    parts = details.view.parts
    assert list(box.children) == list(parts.values())
    assert all(isinstance(part, ipywidgets.HTML) for part in box.children)

    _poll(lambda: "phase one step 2" in parts["log"].value, "the first log lines in the widget")
    assert "ScriptRun Widget (Running)" in parts["header"].value
    _poll(lambda: "0.333333 (last of 3)" in parts["metrics"].value, "three losses")
    assert parts["chart"].value.count("<polyline") == 1 and "loss: 0.333333" in parts["chart"].value
    assert "accuracy" not in parts["metrics"].value
    assert not details.wait(timeout=0.2), "the updates go on while the run runs"

    flag.touch()
    assert details.wait(timeout=120), "the updater stops when the run ends"
    assert run.get_status() == "Completed"
    assert "ScriptRun Widget (Completed)" in parts["header"].value
    assert "phase two" in parts["log"].value and "no newline at the end" in parts["log"].value
    assert "0.1 (last of 4)" in parts["metrics"].value and "0.97" in parts["metrics"].value
    assert "<td>accuracy</td><td>0.97</td>" in parts["properties"].value, "single values"
    assert f"<td>{run.id}</td>" in parts["properties"].value


CHILDREN = """\
from azureml.core import Run
run = Run.get_context()
for name, acc in (("a", 0.5), ("b", 0.9), ("c", 0.7)):
    with run.child_run(name) as child:
        for value in (acc - 0.2, acc, acc - 0.1):
            child.log("acc", value)
print("children done")
"""


def test_children_are_listed_sorted_by_the_metric_given(
    workspace: Workspace, awkward_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _submit(workspace, awkward_dir / "kids", CHILDREN)
    run.wait_for_completion()
    ids = {child.get_metrics()["acc"][1]: child.id for child in run.get_children()}
    assert len(ids) == 3

    RunDetails(run, sort_children_by="acc").show()
    lines = capsys.readouterr().out.splitlines()
    rows = lines[lines.index("Children (3, sorted by acc)") + 1 :]
    assert [row.split()[0] for row in rows[:3]] == [ids[0.9], ids[0.7], ids[0.5]]
    assert rows[0].split()[1:] == ["Completed", "acc=0.9"], "a child's best value"

    # the reference's sweeps name their metric and goal in a property
    run.add_properties({"primary_metric_config": json.dumps({"name": "acc", "goal": "minimize"})})
    data = RunDetails(run).get_widget_data()
    assert [c["run_id"] for c in data["child_runs"]] == [ids[0.5], ids[0.7], ids[0.9]]
    assert data["status"] == "Completed" and data["run_id"] == run.id
    assert "children done" in data["run_logs"]


class _Kernel:
    """What ipykernel's kernel object records of the request being executed."""

    def __init__(self, allow_stdin: bool) -> None:
        self._allow_stdin = allow_stdin


class ZMQInteractiveShell:
    """The shape of IPython's shell inside a Jupyter kernel (ipykernel is not installed here)."""

    def __init__(self, allow_stdin: bool) -> None:
        self.kernel = _Kernel(allow_stdin)


def test_the_view_is_a_widget_only_in_an_interactive_jupyter_kernel() -> None:
    assert choose_view({}, None) == "text", "a script"
    assert choose_view({}, ZMQInteractiveShell(allow_stdin=True)) == "widget"
    assert choose_view({}, ZMQInteractiveShell(allow_stdin=False)) == "text", "nbclient, papermill"
    assert choose_view({"FERRY_RUN_DETAILS": "widget"}, None) == "widget"
    assert choose_view({"FERRY_RUN_DETAILS": "text"}, ZMQInteractiveShell(True)) == "text"


def test_charts_are_inline_svg_with_their_values() -> None:
    svg = svg_chart("loss <&>", [3.0, 2.0, 1.5])
    assert svg.startswith("<svg") and "http" not in svg.replace("http://www.w3.org/2000/svg", "")
    assert "loss &lt;&amp;&gt;: 1.5 (min 1.5, max 3)" in svg
    points = re.search(r'points="([^"]+)"', svg)
    assert points is not None and len(points.group(1).split()) == 3
