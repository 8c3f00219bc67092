"""The VS Code extension end to end, in a real VS Code (code-server 4.100.3) driven by chromium.

One code-server for the module. A person can look at each step: screenshots are written to
tests/vscode/screenshots/ (gitignored). The steps: open a folder with a training script, run
"ferry: Submit Current Script" from the command palette accepting the defaults, see the log lines
in the output channel while it runs, the end notification, the run Completed in the tree; cancel
a long run; open the snapshot of a run against the changed working folder in the diff editor.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import codeserver
import pytest

pytestmark = pytest.mark.vscode

SHOTS = Path(__file__).resolve().parent / "screenshots"
#: the read-only editor a run's log grows in (ferry-log:/RUN.log)
LOG = ".monaco-editor[data-uri^='ferry-log:'] .view-lines"

TRAIN = """
import time
from ferry import Run

run = Run.get_context()
for epoch in range(6):
    print(f"epoch {epoch} loss {1.0 / (epoch + 1):.3f}", flush=True)
    run.log("loss", 1.0 / (epoch + 1))
    time.sleep(0.4)
print("training done", flush=True)
"""

SLOW = """
import time
print("slow job started", flush=True)
for i in range(600):
    time.sleep(0.2)
"""


class Driver:
    """The workbench page, with the few gestures the tests need."""

    def __init__(self, page: Any, shots: Path) -> None:
        self.page = page
        self.shots = shots
        self.step = 0

    def shot(self, name: str) -> None:
        self.step += 1
        self.page.screenshot(path=str(self.shots / f"{self.step:02d}-{name}.png"))

    def palette(self, command: str) -> None:
        """Run a command from the command palette (F1). A palette opened while the workbench
        was still settling (an editor opening) may not take the text: then it is closed and
        opened again, three times at most."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        page = self.page
        for attempt in range(3):
            page.keyboard.press("Escape")
            page.keyboard.press("F1")
            box = page.locator(".quick-input-widget input")
            try:
                box.wait_for(state="visible", timeout=10_000)
                box.fill(">" + command, timeout=5_000)
                # Enter runs the focused row: wait until the filter has put this command there
                page.locator(
                    ".quick-input-list .monaco-list-row.focused", has_text=command
                ).wait_for(timeout=10_000)
            except PlaywrightTimeout:
                if attempt == 2:
                    raise
                continue
            page.keyboard.press("Enter")
            return

    def open_file(self, name: str) -> None:
        page = self.page
        page.keyboard.press("Escape")
        page.keyboard.press("Control+p")
        box = page.locator(".quick-input-widget input")
        box.wait_for(state="visible", timeout=10_000)
        box.fill(name)
        page.locator(".quick-input-list .monaco-list-row", has_text=name).first.wait_for(
            timeout=10_000
        )
        page.keyboard.press("Enter")
        page.locator(".tab.active", has_text=name).wait_for(timeout=10_000)

    def accept_quick_input(self, title: str, pick: bool = True) -> None:
        """Wait for a quick pick (its first item focused) or an input box whose title holds
        ``title``; take its default."""
        widget = self.page.locator(".quick-input-widget")
        widget.locator(".quick-input-title", has_text=title).wait_for(timeout=20_000)
        if pick:
            widget.locator(".quick-input-list .monaco-list-row.focused").first.wait_for(
                timeout=10_000
            )
        else:
            widget.locator(".quick-input-list").wait_for(state="hidden", timeout=10_000)
        self.page.keyboard.press("Enter")
        widget.locator(".quick-input-title", has_text=title).wait_for(
            state="hidden", timeout=10_000
        )

    def submit_defaults(self) -> None:
        """ferry: Submit Current Script, taking every default."""
        self.palette("ferry: Submit Current Script")
        for title in ("experiment", "compute target", "environment"):
            self.accept_quick_input(title)
        self.accept_quick_input("arguments", pick=False)

    def wait_text(self, selector: str, text: str, timeout: float = 30_000) -> None:
        self.page.locator(selector, has_text=text).first.wait_for(timeout=timeout)


def _ferry_json(folder: Path, *args: str) -> Any:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ferry"), *args, "--json"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("vscode") / "demo project"
    folder.mkdir()
    (folder / "train.py").write_text(textwrap.dedent(TRAIN), encoding="utf-8")
    (folder / "slow.py").write_text(textwrap.dedent(SLOW), encoding="utf-8")
    # a job file naming a target the workspace does not have
    (folder / "bad.job.yml").write_text("script: train.py\ncompute_target: nowhere\n")
    (folder.parent / "outside.py").write_text("print('not in the open folder')\n")
    return folder


@pytest.fixture(scope="module")
def driver(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Driver]:
    codeserver.require_tools()
    from playwright.sync_api import sync_playwright

    scratch = tmp_path_factory.mktemp("code-server")
    env = codeserver.ferry_env(scratch / "ferry-home")
    server = codeserver.start(scratch, env, {"ferry.path": str(codeserver.ferry_command())})
    SHOTS.mkdir(exist_ok=True)
    for old in SHOTS.glob("*.png"):
        old.unlink()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(codeserver.CHROMIUM), args=["--no-sandbox"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{server.url}/?folder={project}")
            page.locator(".monaco-workbench").wait_for(timeout=60_000)
            # the extension is active once its view container is in the activity bar
            page.locator(".activitybar .action-item a[aria-label^='ferry']").wait_for(
                timeout=60_000
            )
            page.locator(".monaco-workbench").click(position={"x": 700, "y": 400})
            yield Driver(page, SHOTS)
            browser.close()
    finally:
        server.stop()


def test_submit_current_script_follows_the_run_to_completed(driver: Driver, project: Path) -> None:
    page = driver.page
    driver.open_file("train.py")
    driver.shot("script-open")
    driver.submit_defaults()
    driver.shot("submitted")
    # the folder had no workspace: the first submit made one in it
    assert (project / ".ferry" / "config.json").is_file() or page.locator(
        ".notifications-toasts", has_text="created a workspace"
    ).count()
    # log lines stream into the run's log editor while the run goes on
    driver.wait_text(LOG, "epoch 0 loss 1.000", timeout=30_000)
    status = page.locator(".statusbar-item", has_text="ferry:")
    assert "Running" in status.first.inner_text() or "Queued" in status.first.inner_text()
    driver.shot("log-streaming")
    driver.wait_text(".notifications-toasts", "Completed", timeout=60_000)
    driver.wait_text(LOG, "training done")
    driver.wait_text(LOG, "Completed")
    driver.shot("notification-completed")
    assert (project / "train.job.yml").is_file()
    job = (project / "train.job.yml").read_text(encoding="utf-8")
    assert "script: train.py" in job and "compute_target: local" in job

    # the tree: workspace → experiment → the run, Completed
    page.locator(".activitybar .action-item a[aria-label^='ferry']").click()
    tree = page.locator(".pane-body .monaco-list")
    tree.locator(".monaco-list-row", has_text="demo-project").first.wait_for(timeout=20_000)
    row = tree.locator(".monaco-list-row", has_text="demo-project").first
    if row.get_attribute("aria-expanded") != "true":
        row.click()
    tree.locator(".monaco-list-row", has_text="Completed").first.wait_for(timeout=20_000)
    text = tree.locator(".monaco-list-row", has_text="Completed").first.inner_text()
    assert "loss" in text  # the primary metric is shown
    # the job file the submit saved is a run configuration there
    tree.locator(".monaco-list-row", has_text="Run configurations").first.click()
    tree.locator(".monaco-list-row", has_text="train.job.yml").first.wait_for(timeout=20_000)
    driver.shot("tree-completed")

    runs = _ferry_json(project, "runs", "list")
    assert [r["status"] for r in runs] == ["Completed"]


def test_cancel_a_long_run(driver: Driver, project: Path) -> None:
    page = driver.page
    driver.open_file("slow.py")
    driver.submit_defaults()
    driver.wait_text(LOG, "slow job started", timeout=30_000)
    driver.shot("slow-running")
    driver.palette("ferry: Cancel Run")
    driver.wait_text(".notifications-toasts", "cancel requested", timeout=20_000)
    driver.wait_text(".notifications-toasts", "Canceled", timeout=60_000)
    driver.wait_text(LOG, "Canceled")
    driver.shot("canceled")
    deadline = time.monotonic() + 30
    statuses: list[str] = []
    while time.monotonic() < deadline:
        statuses = [r["status"] for r in _ferry_json(project, "runs", "list")]
        if "Canceled" in statuses:
            break
        time.sleep(0.5)
    assert "Canceled" in statuses
    assert page.locator(".statusbar-item", has_text="Canceled").count() >= 1


def test_snapshot_diff_against_the_working_folder(driver: Driver, project: Path) -> None:
    page = driver.page
    completed = [r for r in _ferry_json(project, "runs", "list") if r["status"] == "Completed"]
    assert completed, "the submit test leaves a completed run"
    run_id = completed[0]["runId"]
    script = project / "train.py"
    script.write_text(script.read_text(encoding="utf-8") + "print('changed after the run')\n")
    driver.palette("ferry: Compare Snapshot with Working Folder")
    box = page.locator(".quick-input-widget input")
    box.wait_for(state="visible", timeout=10_000)
    box.fill(run_id)
    page.locator(".quick-input-list .monaco-list-row", has_text=run_id).first.wait_for(
        timeout=10_000
    )
    page.keyboard.press("Enter")
    page.locator(".monaco-diff-editor").first.wait_for(timeout=30_000)
    driver.wait_text(".tab", "working folder", timeout=10_000)
    driver.wait_text(".monaco-diff-editor", "changed after the run", timeout=10_000)
    driver.shot("snapshot-diff")


def test_a_cli_error_shows_as_a_vscode_error_with_its_fix(driver: Driver, project: Path) -> None:
    page = driver.page
    driver.open_file("bad.job.yml")
    driver.palette("ferry: Submit Job File")
    toast = page.locator(".notifications-toasts .notification-toast", has_text="nowhere")
    toast.first.wait_for(timeout=30_000)
    text = toast.first.inner_text()
    assert "ferry target attach" in text  # the fix the CLI named
    assert "Traceback" not in text
    driver.shot("cli-error")


def test_a_script_outside_the_open_folder_is_refused(driver: Driver, project: Path) -> None:
    page = driver.page
    outside = project.parent / "outside.py"
    page.keyboard.press("Escape")
    page.keyboard.press("Control+p")
    page.locator(".quick-input-widget input").fill(str(outside))
    page.locator(".quick-input-list .monaco-list-row.focused", has_text="outside.py").wait_for(
        timeout=10_000
    )
    page.keyboard.press("Enter")
    page.locator(".tab.active", has_text="outside.py").wait_for(timeout=10_000)
    driver.palette("ferry: Submit Current Script")
    toast = page.locator(".notifications-toasts .notification-toast", has_text="outside the open")
    toast.first.wait_for(timeout=20_000)
    assert "open its folder" in toast.first.inner_text()
    driver.shot("outside-refused")
