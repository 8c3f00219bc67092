"""Helpers of the studio's browser tests: the scripts the runs execute, ``ferry ui`` started and
stopped, screenshots, polling.

Kept apart from conftest.py so test modules import them by a unique name.

The workspace is made once per session (runs logging a 200-point series, a table and a confusion
matrix; a second run with changed code; a three-child sweep), then ``ferry ui --port 0
--no-browser`` serves it. Tests that need a live run submit their own. Screenshots go to
``$FERRY_UI_SCREENSHOTS`` (default ``tests/ui/screenshots/``) for a person to look at.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

#: Debian's chromium (FERRY_UI_CHROMIUM: another build of it)
CHROMIUM = os.environ.get("FERRY_UI_CHROMIUM") or "/usr/bin/chromium"
FERRY = str(Path(sys.executable).with_name("ferry"))
SCREENSHOTS = Path(
    os.environ.get("FERRY_UI_SCREENSHOTS") or Path(__file__).with_name("screenshots")
)

TRAIN = """\
import math, os, struct, sys, zlib
from ferry import Run

run = Run.get_context()
lr = float(sys.argv[sys.argv.index("--lr") + 1])
for step in range(200):
    run.log("loss", math.exp(-step * lr / 10))
run.log("acc", ACC)
run.log_table("per_class", {"label": ["a", "b", "c"], "recall": [0.5, 0.75, 1.0]})
run.log_confusion_matrix("confusion", {"schema_type": "confusion_matrix", "schema_version": "1.0.0",
    "data": {"class_labels": ["cat", "dog"], "matrix": [[5, 1], [2, 7]]}})
run.log_list("per_epoch", [3, 2, 1])
run.log_residuals("residuals", {"schema_type": "residuals", "schema_version": "1.0.0",
    "data": {"bin_edges": [-1, 0, 1, 2], "bin_counts": [3, 5, 2]}})
run.log_predictions("predictions", {"schema_type": "predictions", "schema_version": "1.0.0",
    "data": {"bin_averages": [0.5, 1.5, 2.4], "bin_errors": [0.1, 0.1, 0.2],
             "bin_counts": [4, 5, 6], "bin_edges": [0, 1, 2, 3]}})
run.log_accuracy_table("accuracy", {"schema_type": "accuracy_table", "schema_version": "1.0.1",
    "data": {"probability_thresholds": [0.0, 0.5, 1.0], "percentile_thresholds": [0, 50, 100],
             "class_labels": ["cat", "dog"],
             "probability_tables": [[[5, 5, 0, 0], [4, 1, 4, 1], [0, 0, 5, 5]],
                                    [[5, 5, 0, 0], [3, 2, 3, 2], [0, 0, 5, 5]]],
             "percentile_tables": [[[5, 5, 0, 0], [4, 1, 4, 1], [0, 0, 5, 5]],
                                   [[5, 5, 0, 0], [3, 2, 3, 2], [0, 0, 5, 5]]]}})


def png(path, width=8, height=6):
    # a small red PNG, written with the standard library
    raw = b"".join(b"\\x00" + b"\\xff\\x00\\x00" * width for _ in range(height))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    with open(path, "wb") as fh:
        fh.write(b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


png("red.png")
run.log_image("sample", path="red.png")
os.makedirs("outputs", exist_ok=True)
with open("outputs/model.pkl", "wb") as fh:
    fh.write(b"weights")
run.register_model(model_name="ui-model", model_path="outputs/model.pkl")
print("trained with lr", lr, flush=True)
"""

FAIL = """\
raise ValueError("the learning rate must be positive")
"""

SLOW = """\
import time
from ferry import Run

run = Run.get_context()
for i in range(400):
    print(f"tick {i} at {time.time():.3f}", flush=True)
    run.log("tick", i)
    time.sleep(0.3)
"""

BIG_LOG = """\
for i in range(4000):
    print(f"line {i:05d} " + "x" * 90)
"""

INTERACTIVE_RUNS = """\
import sys
from ferry import Experiment, Workspace

exp = Experiment(Workspace.create(sys.argv[1]), "ui-paging")
for i in range(12):
    with exp.start_logging(snapshot_directory=None, outputs=False, display_name=f"page run {i:02d}") as run:
        run.log("i", i)
"""

RANKS = """\
import os
print("hello from rank", os.environ["RANK"], flush=True)
"""

SUBMIT_RANKS = """\
import sys
from ferry import Experiment, Workspace
from ferry.runconfig import PyTorchConfiguration
from ferry.script_run_config import ScriptRunConfig

config = PyTorchConfiguration(process_count=2, communication_backend="Gloo")
run = Experiment(Workspace.create(sys.argv[1]), "ui-ranks").submit(
    ScriptRunConfig(".", "ranks.py", distributed_job_config=config))
run.wait_for_completion()
print(run.id)
"""

READ_DATA = """\
import sys
print("dataset at", sys.argv[1], flush=True)
"""

SUBMIT_DATA = """\
import sys
from ferry import Dataset, Experiment, Workspace
from ferry.script_run_config import ScriptRunConfig

ws = Workspace.create(sys.argv[1])
store = ws.get_default_datastore()
store.upload_files(["sample.csv"], target_path="ui-data", show_progress=False)
data = Dataset.File.from_files((store, "ui-data/")).register(ws, "ui-data")
run = Experiment(ws, "ui-data").submit(
    ScriptRunConfig(".", "read_data.py", arguments=[data.as_named_input("train")]))
run.wait_for_completion()
print(run.id)
"""

SWEEP_TRAIN = """\
import argparse, time
from ferry import Run

parser = argparse.ArgumentParser()
parser.add_argument("--alpha", type=float)
parser.add_argument("--kernel")
args = parser.parse_args()
run = Run.get_context()
for step in range(1, 11):  # long enough for the bandit policy to stop the weaker children
    run.log("acc", args.alpha * step / 10 + (0.05 if args.kernel == "rbf" else 0.0))
    time.sleep(0.3)
"""

SWEEP_JOB = """\
experiment: ui-sweep
source_directory: sweep
script: train.py
compute_target: local
sweep:
  sampling: grid
  parameters:
    --alpha: "choice(0.2, 0.5, 0.9)"
    --kernel: "choice('linear')"
  policy: {bandit: {slack_factor: 0.1, evaluation_interval: 1}}
  metric: acc
  goal: maximize
  max_total_runs: 3
  max_concurrent_runs: 3
"""


@dataclass
class Studio:
    """The served workspace: its address, token and the runs made for the tests."""

    base: str
    token: str
    workspace: Path
    project: Path
    env: dict[str, str]
    runs: dict[str, str] = field(default_factory=dict)
    stopped_early: set[str] = field(default_factory=set)

    def ferry(self, *args: str, timeout: float = 120) -> str:
        """Run the real CLI on the workspace; its stdout (a failure shows stderr)."""
        done = subprocess.run(
            [FERRY, "-w", str(self.workspace), *args],
            cwd=self.project, env=self.env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        assert done.returncode == 0, f"ferry {' '.join(args)} failed:\n{done.stderr}"
        return done.stdout

    def submit(
        self, script: str, *args: str, experiment: str, tag: str = "", wait: bool = True
    ) -> str:
        """Submit a script of the project; the run id (waits for the end unless wait=False)."""
        options = [
            "-e",
            experiment,
            *(("--tag", tag) if tag else ()),
            "--json" if wait else "--no-wait",
        ]
        out = self.ferry("submit", script, *options, "--", *args)
        return str(json.loads(out)["runId"]) if wait else out.split()[-1]

    def status(self, run_id: str) -> str:
        return str(json.loads(self.ferry("runs", "show", run_id, "--json"))["status"])


def environment(home: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("FERRY_WORKSPACE", "FERRY_DATABASE_URL")
    }
    env.update(
        FERRY_HOME=str(home),
        FERRY_HEARTBEAT_SECONDS="0.3",
        FERRY_KILL_GRACE_SECONDS="2",
        DOCKER_HOST=f"unix://{home / 'no-docker-engine.sock'}",
        PYTHONUNBUFFERED="1",
    )
    return env


def start_ui(
    workspace: Path, env: dict[str, str], *extra: str
) -> tuple[subprocess.Popen[str], str, str]:
    """``ferry ui --port 0 --no-browser``: the process, its base address and its token.

    The server runs in this very process (FERRY_NO_DAEMON: not in a warm zygote's worker), so
    killing it takes the server away, as a test of a server that went away needs.
    """
    proc = subprocess.Popen(
        [FERRY, "-w", str(workspace), "ui", "--port", "0", "--no-browser", *extra],
        env={**env, "FERRY_NO_DAEMON": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the first line is the address (blocks until printed)
    match = re.match(r"ferry ui: (http://[^/]+)/\?token=(\S+)", line)
    if not match:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"ferry ui did not print its address (got {line!r}):\n{err}")
    return proc, match.group(1), match.group(2)


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def screenshot(page: Any, name: str) -> None:
    """Leave a picture of the view for a person to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def wait_until(check: Any, timeout: float = 20, what: str = "condition") -> Any:
    """Poll ``check`` until it returns a truthy value (the value), or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def rows(page: Any) -> list[str]:
    """The run ids of the runs table's rows, in order (read at once: the table re-renders)."""
    ids: list[str] = page.eval_on_selector_all(
        "[data-testid=runs-table] tbody tr[data-run-id]", "rows => rows.map(r => r.dataset.runId)"
    )
    return ids


def open_path(page: Any, studio: Studio, path: str, ready: str) -> None:
    page.goto(studio.base + path)
    page.wait_for_selector(ready)
