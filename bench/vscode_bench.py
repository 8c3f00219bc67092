"""The VS Code extension (issue 17) in a real VS Code: code-server 4.100.3 driven by chromium.

1. Submit → first log line visible: the extension ("ferry: Submit Job File" on an open job file,
   the line appearing in the output channel) against `ferry submit` in a terminal (the line on
   its standard output). Goal: the extension ≤ +0.3 s.
2. Expanding an experiment of 10,000 runs in the tree: a click on the experiment to its first
   page of rows (and "Load more…") on screen. Goal: ≤ 1 s. The CLI call behind it is timed too.

Needs `make vsix code-server` (and Playwright); figures are medians, reported, never asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import HERE, VENV_BIN, median, scratch, write_result

sys.path.insert(0, str(HERE.parent / "tests" / "vscode"))
import codeserver

REPEAT = 5
RUNS = 10_000
MARK = "FIRST-LINE-MARK"
# each run prints the mark with its own number (a counter file outside the snapshot), so the
# line waited for is this run's, not the last one's still on screen
SCRIPT = """
import pathlib, time
counter = pathlib.Path({counter!r})
n = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(n))
print(f"{mark}-{{n}}-", flush=True)
time.sleep(0.3)
"""


def terminal_first_line(folder: Path, env: dict[str, str], mark: str) -> float:
    """`ferry submit job.yml` to the first line of the script on its standard output."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(VENV_BIN / "ferry"), "submit", "train.job.yml"],
        cwd=folder,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    seen = None
    for line in proc.stdout:
        if mark in line and seen is None:
            seen = time.perf_counter() - started
    proc.wait()
    assert seen is not None, "the script's line never came"
    return seen


def make_runs(folder: Path) -> None:
    """An experiment of RUNS finished runs with one metric each, written to the store directly."""
    from ferry.status import RunStatus
    from ferry.tracking.base import CreateRun, MetricSeries, RunRecord
    from ferry.workspace import Workspace

    ws = Workspace.from_config(folder)
    ws.store.ensure_experiment("big")
    now = time.time() - RUNS
    for start in range(0, RUNS, 1000):
        ops: list[object] = []
        for i in range(start, start + 1000):
            run_id = f"big_{i:06d}"
            ops.append(
                CreateRun(
                    RunRecord(
                        id=run_id,
                        experiment="big",
                        status=RunStatus.COMPLETED,
                        created_at=now + i,
                        start_time=now + i,
                        end_time=now + i + 2.5,
                    )
                )
            )
            ops.append(MetricSeries(run_id, "acc", "scalar", [i / RUNS], None, [now + i]))
        ws.store.apply(ops)  # type: ignore[arg-type]
    ws.store.close()


LOG_LINES = ".monaco-editor[data-uri^='ferry-log:'] .view-lines"


def on_screen(page: Any, selector: str, text: str) -> None:
    """Wait until an element matching ``selector`` shows ``text``, checked every animation
    frame (a locator's wait backs off to 500 ms between checks: too coarse to time with)."""
    page.wait_for_function(
        """([selector, text]) => [...document.querySelectorAll(selector)].some(
            (e) => e.innerText.replace(/\u00a0/g, " ").includes(text))""",
        arg=[selector, text],
        polling="raf",
        timeout=60_000,
    )


def breakdown(trace: str, enter_at: list[float], seen_at: list[float]) -> list[float]:
    """Median ms of: Enter → command, command → spawn, spawn → first log line, line → screen."""
    import re

    commands = [int(m) for m in re.findall(r"^@(\d+) ferry.submitJobFile$", trace, re.M)]
    spawns = [int(m) for m in re.findall(r"^@(\d+) spawn ferry submit", trace, re.M)]
    logs = [int(m) for m in re.findall(r"ferry submit \S+ --stream: log @(\d+)$", trace, re.M)]
    parts: list[list[float]] = [[], [], [], []]
    for enter, seen in zip(enter_at, seen_at, strict=True):
        ms = enter * 1000
        command = min((c for c in commands if c >= ms - 5), default=None)
        if command is None:
            continue
        spawn = min((p for p in spawns if p >= command), default=command)
        log = min((g for g in logs if g >= spawn), default=spawn)
        parts[0].append(command - ms)
        parts[1].append(spawn - command)
        parts[2].append(log - spawn)
        parts[3].append(seen * 1000 - log)
    return [median(p) if p else float("nan") for p in parts]


def main() -> None:
    codeserver.require_tools()
    from playwright.sync_api import sync_playwright

    work = scratch("vscode")
    folder = work / "project"
    folder.mkdir()
    counter = work / "counter"
    (folder / "train.py").write_text(SCRIPT.format(counter=str(counter), mark=MARK))
    count = 0
    (folder / "train.job.yml").write_text(
        "experiment: bench\nscript: train.py\narguments: []\ncompute_target: local\n"
    )
    env = codeserver.ferry_env(work / "home")
    trace_file = work / "trace.log"
    subprocess.run([str(VENV_BIN / "ferry"), "init", str(folder)], check=True, capture_output=True)
    make_runs(folder)
    terminal = []
    for attempt in range(REPEAT + 1):
        count += 1
        seen = terminal_first_line(folder, env, f"{MARK}-{count}-")
        if attempt:  # the first warms the zygote
            terminal.append(seen)

    cli = []
    for _ in range(REPEAT):
        t = time.perf_counter()
        out = subprocess.run(
            [str(VENV_BIN / "ferry"), "runs", "list", "-e", "big", "-n", "100", "--page", "--json"],
            cwd=folder,
            capture_output=True,
            check=True,
        ).stdout
        cli.append(time.perf_counter() - t)
        assert len(json.loads(out)["runs"]) == 100

    server = codeserver.start(
        work / "code-server",
        {**env, "FERRY_VSCODE_TRACE_FILE": str(trace_file)},
        {"ferry.path": str(codeserver.ferry_command())},
    )
    enter_at: list[float] = []
    seen_at: list[float] = []
    extension: list[float] = []
    expand: list[float] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(codeserver.CHROMIUM), args=["--no-sandbox"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{server.url}/?folder={folder}")
            ferry_icon = page.locator(".activitybar .action-item a[aria-label^='ferry']")
            ferry_icon.wait_for(timeout=60_000)
            page.locator(".monaco-workbench").click(position={"x": 700, "y": 400})
            page.keyboard.press("Control+p")
            page.locator(".quick-input-widget input").fill("train.job.yml")
            page.locator(
                ".quick-input-list .monaco-list-row", has_text="train.job.yml"
            ).first.wait_for()
            page.keyboard.press("Enter")
            page.locator(".tab.active", has_text="train.job.yml").wait_for()
            for attempt in range(REPEAT + 1):
                count += 1
                page.keyboard.press("Escape")
                page.keyboard.press("F1")
                page.locator(".quick-input-widget input").fill(">ferry: Submit Job File")
                page.locator(
                    ".quick-input-list .monaco-list-row", has_text="ferry: Submit Job File"
                ).first.wait_for()
                started = time.perf_counter()
                wall = time.time()
                page.keyboard.press("Enter")
                on_screen(page, LOG_LINES, f"{MARK}-{count}-")
                if attempt:  # the first warms the extension's workspace check
                    extension.append(time.perf_counter() - started)
                    enter_at.append(wall)
                    seen_at.append(time.time())
                page.locator(".statusbar-item", has_text="Completed").first.wait_for(timeout=60_000)
            ferry_icon.click()
            tree = page.locator(".pane-body .monaco-list")
            for _ in range(REPEAT):
                big = tree.locator(".monaco-list-row", has_text="big").first
                big.wait_for(timeout=30_000)
                if big.get_attribute("aria-expanded") == "true":
                    big.click()  # collapse, and refresh so the page is asked again
                page.keyboard.press("F1")
                page.locator(".quick-input-widget input").fill(">ferry: Refresh")
                page.locator(
                    ".quick-input-list .monaco-list-row", has_text="ferry: Refresh"
                ).first.wait_for()
                page.keyboard.press("Enter")
                big = tree.locator(".monaco-list-row", has_text="big").first
                big.wait_for(timeout=30_000)
                time.sleep(0.5)
                started = time.perf_counter()
                big.click()
                on_screen(page, ".pane-body .monaco-list .monaco-list-row", f"Run {RUNS}")
                expand.append(time.perf_counter() - started)
            page.screenshot(path=str(work / "expanded.png"))
            browser.close()
    finally:
        server.stop()
    t, e, x, c = median(terminal), median(extension), median(expand), median(cli)
    steps = breakdown(trace_file.read_text(), enter_at, seen_at)
    write_result(
        "vscode",
        f"""
## VS Code extension (issue 17)

In a real VS Code (code-server 4.100.3, VS Code 1.100.3) driven by chromium through Playwright;
median of {REPEAT}.

| submit → first log line visible | median | vs terminal |
|---|---|---|
| `ferry submit train.job.yml` in a terminal (the line on stdout) | {t * 1000:.0f} ms | — |
| "ferry: Submit Job File" (the line in the run's log editor) | {e * 1000:.0f} ms | {(e - t) * 1000:+.0f} ms |

Goal: ≤ +300 ms. The extension runs one process, `ferry submit --json --stream`, whose JSON
lines carry the log as the job writes it. Where the extension's time goes (medians, from its
trace, FERRY_VSCODE_TRACE_FILE): Enter → the command runs {steps[0]:.0f} ms; → `ferry` spawned
{steps[1]:.0f} ms; spawned → the first log line read from it {steps[2]:.0f} ms (the same CLI
from a terminal: {t * 1000:.0f} ms, all of it); read → on screen {steps[3]:.0f} ms. Machine load
during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.

| expanding an experiment of {RUNS:,} runs | median |
|---|---|
| click → its first 100 rows and "Load more…" on screen | {x * 1000:.0f} ms |
| of which `ferry runs list -e big -n 100 --page --json` | {c * 1000:.0f} ms |

Goal: ≤ 1 s.
""",
    )


if __name__ == "__main__":
    main()
