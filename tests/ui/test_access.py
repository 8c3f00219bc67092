"""Addresses, tokens and a server that goes away: clear pages, never a stack trace."""

from __future__ import annotations

import re
from typing import Any

import pytest
from studio_helpers import Studio, open_path, screenshot, start_ui, stop

pytestmark = pytest.mark.ui


def test_unknown_run_and_experiment_show_not_found(page: Any, studio: Studio) -> None:
    open_path(page, studio, "/runs/no-such-run", "[data-testid=not-found]")
    assert "no-such-run" in page.inner_text("[data-testid=not-found]")
    screenshot(page, "not-found")
    open_path(page, studio, "/experiments/no-such-experiment", "[data-testid=not-found]")
    assert "no-such-experiment" in page.inner_text("[data-testid=not-found]")


def test_signin_refuses_a_wrong_token_and_accepts_the_right_one(
    browser: Any, studio: Studio
) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    try:
        page.goto(f"{studio.base}/runs")
        page.wait_for_url(re.compile(r"/signin\?next="))
        page.fill("#token", "wrong")
        page.click("button[type=submit]")
        page.wait_for_selector("[data-testid=signin] [role=alert]")
        screenshot(page, "signin")
        page.fill("#token", studio.token)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r"/runs$"))
        page.wait_for_selector("[data-testid=runs-table] tbody tr[data-run-id]")
    finally:
        context.close()


def test_a_server_that_went_away_is_announced_and_the_page_reconnects(
    browser: Any, studio: Studio
) -> None:
    proc, base, token = start_ui(studio.workspace, studio.env)
    port = base.rsplit(":", 1)[1]
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    try:
        page.goto(f"{base}/experiments/ui-metrics?token={token}")
        page.wait_for_selector("[data-testid=runs-table] tbody tr[data-run-id]")
        proc.kill()
        proc.wait(timeout=10)
        page.click("button[data-sort='metrics.acc']")  # the next call finds no server
        page.wait_for_selector("[data-testid=unreachable]")
        screenshot(page, "server-unreachable")
        proc, _, token = start_ui(studio.workspace, studio.env, "--port", port)
        # back: the banner clears by itself; the new server has a new token, so: sign in
        page.wait_for_selector("[data-testid=unreachable]", state="detached", timeout=30000)
        page.wait_for_url(re.compile(r"/signin\?next="))
    finally:
        context.close()
        stop(proc)
