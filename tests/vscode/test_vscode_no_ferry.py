"""The extension where no ferry can be found: one message naming what was tried and how to
install ferry, with a button that runs the install in a terminal (a code-server of its own,
whose setting ferry.path names a file that does not exist and whose PATH holds no ferry)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import codeserver
import pytest

pytestmark = pytest.mark.vscode


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    codeserver.require_tools()
    from playwright.sync_api import sync_playwright

    scratch = tmp_path_factory.mktemp("code-server-no-ferry")
    folder = scratch / "project"
    folder.mkdir()
    (folder / "train.py").write_text("print('hello')\n", encoding="utf-8")
    missing = scratch / "no-such-dir" / "ferry"
    server = codeserver.start(
        scratch, codeserver.ferry_env(scratch / "home"), {"ferry.path": str(missing)}
    )
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(codeserver.CHROMIUM), args=["--no-sandbox"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{server.url}/?folder={folder}")
            page.locator(".activitybar .action-item a[aria-label^='ferry']").wait_for(
                timeout=60_000
            )
            page.locator(".monaco-workbench").click(position={"x": 700, "y": 400})
            yield page
            browser.close()
    finally:
        server.stop()


def test_no_ferry_says_what_was_tried_and_offers_the_install(page: Any) -> None:
    shots = Path(__file__).resolve().parent / "screenshots"
    shots.mkdir(exist_ok=True)
    page.keyboard.press("Control+p")
    page.locator(".quick-input-widget input").fill("train.py")
    page.locator(".quick-input-list .monaco-list-row.focused", has_text="train.py").wait_for()
    page.keyboard.press("Enter")
    page.locator(".tab.active", has_text="train.py").wait_for()
    page.keyboard.press("F1")
    page.locator(".quick-input-widget input").fill(">ferry: Submit Current Script")
    page.locator(
        ".quick-input-list .monaco-list-row.focused", has_text="ferry: Submit Current Script"
    ).wait_for()
    page.keyboard.press("Enter")
    toast = page.locator(".notifications-toasts .notification-toast", has_text="no ferry command")
    toast.first.wait_for(timeout=30_000)
    text = toast.first.inner_text()
    assert "setting ferry.path" in text and "PATH" in text  # what was tried
    assert "pip install -U ferry" in text  # how to install it
    page.screenshot(path=str(shots / "no-ferry.png"))
    # the button that runs the install in a terminal (not pressed here: it would reach PyPI)
    assert toast.first.locator(".monaco-button", has_text="Install ferry").count() == 1
    # and the tree says the same instead of an empty view
    page.locator(".activitybar .action-item a[aria-label^='ferry']").click()
    page.locator(".pane-body .monaco-list-row", has_text="ferry is not installed").wait_for(
        timeout=20_000
    )
