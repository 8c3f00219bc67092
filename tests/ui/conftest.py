"""A real ``ferry ui`` over a workspace with real runs, and Debian's chromium driven by Playwright.

The workspace is made once per session (runs logging a 200-point series, a table and a confusion
matrix; a second run with changed code; a 400 KB log; a three-child sweep), then ``ferry ui
--port 0 --no-browser`` serves it. Tests that need a live run submit their own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from studio_helpers import (
    BIG_LOG,
    CHROMIUM,
    FAIL,
    INTERACTIVE_RUNS,
    RANKS,
    READ_DATA,
    SLOW,
    SUBMIT_DATA,
    SUBMIT_RANKS,
    SWEEP_JOB,
    SWEEP_TRAIN,
    TRAIN,
    Studio,
    environment,
    start_ui,
    stop,
)


@pytest.fixture(scope="session")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    root = tmp_path_factory.mktemp("ui") / "wörk space 'q'"
    project = root / "project"
    (project / "sweep").mkdir(parents=True)
    env = environment(root / "home")
    (project / "train.py").write_text(TRAIN.replace("ACC", "0.8"), encoding="utf-8")
    (project / "slow.py").write_text(SLOW, encoding="utf-8")
    (project / "fail.py").write_text(FAIL, encoding="utf-8")
    (project / "big_log.py").write_text(BIG_LOG, encoding="utf-8")
    (project / "sweep" / "train.py").write_text(SWEEP_TRAIN, encoding="utf-8")
    (project / "job.yml").write_text(SWEEP_JOB, encoding="utf-8")
    git_env = {**env, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e",
               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}  # fmt: skip
    for git in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "first"]):
        subprocess.run(["git", *git], cwd=project, env=git_env, check=True)
    studio = Studio("", "", root / "ws", project, env)
    (project / "ranks.py").write_text(RANKS, encoding="utf-8")
    (project / "submit_ranks.py").write_text(SUBMIT_RANKS, encoding="utf-8")
    ranks = subprocess.Popen(  # a two-rank run (a log per rank), meanwhile
        [sys.executable, "submit_ranks.py", str(studio.workspace)],
        cwd=project, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    data_dir = root / "data project"
    data_dir.mkdir()
    (data_dir / "sample.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (data_dir / "read_data.py").write_text(READ_DATA, encoding="utf-8")
    (data_dir / "submit_data.py").write_text(SUBMIT_DATA, encoding="utf-8")
    data = subprocess.Popen(  # a run reading a registered dataset, meanwhile
        [sys.executable, "submit_data.py", str(studio.workspace)],
        cwd=data_dir, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    runs = studio.runs
    runs["first"] = studio.submit("train.py", "--lr", "0.1", experiment="ui-metrics", tag="team=a")
    # the second run's code differs (a comment and the accuracy, not committed): compare and
    # its Git tab show the diff
    (project / "train.py").write_text(
        "# variant two\n" + TRAIN.replace("ACC", "0.9"), encoding="utf-8"
    )
    runs["second"] = studio.submit("train.py", "--lr", "0.5", experiment="ui-metrics", tag="team=b")
    runs["big_log"] = studio.submit("big_log.py", experiment="ui-logs")
    runs["failed"] = studio.submit("fail.py", experiment="ui-logs", wait=False)
    (project / "interactive.py").write_text(INTERACTIVE_RUNS, encoding="utf-8")
    subprocess.run(
        [sys.executable, "interactive.py", str(studio.workspace)], cwd=project, env=env, check=True
    )  # twelve interactive runs: more than a page of ten
    summary = json.loads(studio.ferry("sweep", "job.yml", "--json", timeout=180))
    runs["sweep"] = summary["runId"]
    studio.stopped_early = {c["run_id"] for c in summary["children"] if c["status"] == "Canceled"}
    out, _ = ranks.communicate(timeout=120)
    assert ranks.returncode == 0, "the two-rank run could not be submitted"
    runs["ranks"] = out.split()[-1]
    out, _ = data.communicate(timeout=120)
    assert data.returncode == 0, "the run reading a dataset could not be submitted"
    runs["data"] = out.split()[-1]
    proc, studio.base, studio.token = start_ui(studio.workspace, env)
    try:
        yield studio
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module. Not for the session: Playwright's sync API runs one
    instance at a time in a process, and the VS Code tests (run after these) start their own."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the UI tests need Playwright: pip install -e '.[dev]' (playwright>=1.40)")
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"the UI tests drive Debian's chromium at {CHROMIUM}, which is missing: install it "
            "with `sudo apt-get install chromium`, or set FERRY_UI_CHROMIUM to a chromium binary "
            "(Playwright's own browser download is not used)"
        )
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, studio: Studio) -> Iterator[Any]:
    """A signed-in page at a laptop's screen size; page errors fail the test."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(15000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{studio.base}/?token={studio.token}")
    page.wait_for_selector("[data-testid=experiments]")
    yield page
    context.close()
    assert not errors, f"errors in the page: {errors}"
