"""ferry studio in a real browser (Debian's chromium) against a real ``ferry ui``.

Each view loads and is photographed; the runs table sorts and filters on the server; the live log
grows while a run runs; charts carry the logged values; compare shows the code diff; cancel
cancels; bad addresses and filters get a clear answer; a server that goes away is announced and
the page reconnects.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from studio_helpers import Studio, screenshot, start_ui, stop, wait_until

pytestmark = pytest.mark.ui

RUN_TABS = ["overview", "log", "metrics", "files", "snapshot", "environment", "git"]


def rows(page: Any) -> list[str]:
    """The run ids of the runs table's rows, in order (read at once: the table re-renders)."""
    ids: list[str] = page.eval_on_selector_all(
        "[data-testid=runs-table] tbody tr[data-run-id]", "rows => rows.map(r => r.dataset.runId)"
    )
    return ids


def open_path(page: Any, studio: Studio, path: str, ready: str) -> None:
    page.goto(studio.base + path)
    page.wait_for_selector(ready)


def test_experiments_page_lists_each_experiment_with_its_runs(page: Any, studio: Studio) -> None:
    table = page.locator("[data-testid=experiments-table]")
    metrics = table.locator("tr[data-experiment=ui-metrics]")
    assert metrics.locator("td").nth(1).inner_text() == "2"
    assert table.locator("tr[data-experiment=ui-sweep]").count() == 1
    assert "ws" in page.inner_text("[data-testid=who]")
    screenshot(page, "experiments")
    page.emulate_media(color_scheme="dark")
    screenshot(page, "experiments-dark")
    metrics.get_by_role("link", name="ui-metrics").click()
    page.wait_for_url(re.compile(r"/experiments/ui-metrics$"))
    wait_until(lambda: len(rows(page)) == 2, what="the experiment's two runs")


def test_runs_table_sorts_by_a_metric_column_on_click_and_on_enter(
    page: Any, studio: Studio
) -> None:
    open_path(
        page, studio, "/experiments/ui-metrics", "[data-testid=runs-table] tbody tr[data-run-id]"
    )
    first, second = studio.runs["first"], studio.runs["second"]
    page.click("button[data-sort='metrics.acc']")  # highest accuracy first
    wait_until(lambda: rows(page) == [second, first], what="acc descending")
    header = page.locator("th", has=page.locator("button[data-sort='metrics.acc']"))
    assert header.get_attribute("aria-sort") == "descending"
    page.focus("button[data-sort='metrics.acc']")
    page.keyboard.press("Enter")  # the keyboard sorts too
    wait_until(lambda: rows(page) == [first, second], what="acc ascending")
    assert header.get_attribute("aria-sort") == "ascending"
    page.click("button[data-sort='tags.team']")
    wait_until(lambda: rows(page) == [first, second], what="team a first")
    page.click("button[data-sort='tags.team']")
    wait_until(lambda: rows(page) == [second, first], what="team b first")
    screenshot(page, "runs-sorted")


def test_filter_narrows_the_table_and_enter_applies_it(page: Any, studio: Studio) -> None:
    open_path(
        page, studio, "/experiments/ui-metrics", "[data-testid=runs-table] tbody tr[data-run-id]"
    )
    box = page.locator("[data-testid=filter]")
    box.fill("metrics.acc > 0.85")
    box.press("Enter")
    wait_until(lambda: rows(page) == [studio.runs["second"]], what="only the 0.9 run")
    box.fill("tags.team = 'a' and status = 'Completed'")
    box.press("Enter")
    wait_until(lambda: rows(page) == [studio.runs["first"]], what="only team a")
    assert page.inner_text("[data-testid=page-info]") == "1–1 of 1"
    screenshot(page, "runs-filtered")
    assert "filter=" in page.url
    page.reload()  # the filter lives in the address
    wait_until(lambda: rows(page) == [studio.runs["first"]], what="the filter after a reload")
    assert box.input_value() == "tags.team = 'a' and status = 'Completed'"


def test_a_malformed_filter_shows_the_message_under_the_box(page: Any, studio: Studio) -> None:
    open_path(
        page, studio, "/experiments/ui-metrics", "[data-testid=runs-table] tbody tr[data-run-id]"
    )
    box = page.locator("[data-testid=filter]")
    box.fill("metrics.acc >>> 1")
    box.press("Enter")
    message = wait_until(
        lambda: page.inner_text("[data-testid=filter-error]").strip(), what="the filter's error"
    )
    assert "acc" in message or "filter" in message.lower(), message
    assert box.get_attribute("aria-invalid") == "true"
    assert len(rows(page)) == 2  # the last good answer stays
    screenshot(page, "runs-bad-filter")
    box.fill("")
    box.press("Enter")
    wait_until(
        lambda: not page.inner_text("[data-testid=filter-error]").strip(), what="the error to clear"
    )


def test_pages_of_ten_and_a_sort_across_all_pages(page: Any, studio: Studio) -> None:
    open_path(
        page, studio, "/experiments/ui-paging", "[data-testid=runs-table] tbody tr[data-run-id]"
    )
    page.select_option("[data-testid=page-size]", "10")
    info = page.locator("[data-testid=page-info]")
    wait_until(lambda: info.inner_text() == "1–10 of 12", what="a page of ten")
    page.click("button[data-sort='metrics.i']")  # highest first, over all twelve runs
    names = "[data-testid=runs-table] tbody tr[data-run-id] td:nth-child(2) a"
    wait_until(lambda: page.locator(names).first.inner_text() == "page run 11", what="run 11 first")
    page.click("[data-testid=next]")
    wait_until(lambda: info.inner_text() == "11–12 of 12", what="the second page")
    assert page.locator(names).all_inner_texts() == ["page run 01", "page run 00"]
    assert page.locator("[data-testid=next]").is_disabled()
    screenshot(page, "runs-second-page")
    page.click("[data-testid=previous]")
    wait_until(lambda: info.inner_text() == "1–10 of 12", what="the first page again")
    page.reload()  # the page size is remembered
    wait_until(lambda: info.inner_text() == "1–10 of 12", what="ten rows after a reload")


def test_column_chooser_hides_a_column_and_remembers_it(page: Any, studio: Studio) -> None:
    open_path(
        page, studio, "/experiments/ui-metrics", "[data-testid=runs-table] tbody tr[data-run-id]"
    )
    headers = page.locator("[data-testid=runs-table] thead th")
    assert "Target" in headers.all_inner_texts()
    page.click("[data-testid=column-chooser] summary")
    page.get_by_label("Target").uncheck()
    wait_until(lambda: "Target" not in headers.all_inner_texts(), what="Target hidden")
    page.reload()
    page.wait_for_selector("[data-testid=runs-table] tbody tr[data-run-id]")
    assert "Target" not in headers.all_inner_texts()
    assert "acc" in " ".join(headers.all_inner_texts())


def test_all_runs_page_lists_top_level_runs_of_every_experiment(page: Any, studio: Studio) -> None:
    open_path(page, studio, "/runs", "[data-testid=runs-table] tbody tr[data-run-id]")
    ids = wait_until(
        lambda: rows(page) if studio.runs["sweep"] in rows(page) else None, what="the sweep parent"
    )
    assert studio.runs["first"] in ids and studio.runs["second"] in ids
    assert not any(i.startswith(studio.runs["sweep"] + "_") for i in ids)  # children stay under it
    assert "Experiment" in page.locator("[data-testid=runs-table] thead th").all_inner_texts()
    screenshot(page, "all-runs")


def test_each_tab_of_the_run_page_loads(page: Any, studio: Studio) -> None:
    run = studio.runs["second"]
    open_path(page, studio, f"/runs/{run}", "[data-testid=run-page]")
    assert page.get_attribute("[data-testid=run-page]", "data-status") == "Completed"
    for tab in RUN_TABS:
        page.click(f"[role=tab][data-tab={tab}]")
        page.wait_for_selector(f"[data-testid=tab-{tab}]")
        assert page.get_attribute(f"[role=tab][data-tab={tab}]", "aria-selected") == "true"
        assert f"tab={tab}" in page.url
        page.wait_for_selector("#tab-panel:not(:has([aria-busy=true]))")
        screenshot(page, f"run-{tab}")
    page.click("[role=tab][data-tab=overview]")
    assert "team" in page.inner_text("[data-testid=tags]")
    page.click("[role=tab][data-tab=log]")
    wait_until(
        lambda: "trained with lr 0.5" in page.inner_text("[data-testid=log-text]"), what="the log"
    )
    page.click("[role=tab][data-tab=snapshot]")
    page.click("[data-testid=snapshot] button[data-path='train.py']")
    wait_until(
        lambda: "# variant two" in page.inner_text("[data-testid=file-view]"),
        what="the snapshot file",
    )
    page.click("[role=tab][data-tab=models]")  # registered from the run
    assert "ui-model" in page.inner_text("[data-testid=models]")
    screenshot(page, "run-models")
    page.click("[role=tab][data-tab=git]")
    assert "main" in page.inner_text("[data-testid=git]")
    assert "+# variant two" in page.locator("[data-testid=git] .d-add").all_inner_texts()
    page.click("[role=tab][data-tab=files]")
    page.click("[data-testid=files-logs] button.link")
    wait_until(
        lambda: "trained with lr 0.5" in page.inner_text("[data-testid=file-view]"),
        what="the log file",
    )
    with page.expect_download() as download:
        page.get_by_role("button", name="Download red.png").click()
    assert download.value.suggested_filename == "red.png"
    assert download.value.path().read_bytes().startswith(b"\x89PNG")
    page.focus("[role=tab][data-tab=snapshot]")  # arrow keys move between tabs
    page.keyboard.press("ArrowRight")
    page.wait_for_selector("[data-testid=tab-environment]")


def test_metric_charts_show_the_logged_values(page: Any, studio: Studio) -> None:
    run = studio.runs["first"]
    open_path(page, studio, f"/runs/{run}?tab=metrics", "[data-metric=loss] [data-testid=chart]")
    chart = page.locator("[data-metric=loss] [data-testid=chart]")
    assert chart.get_attribute("data-points") == "200"
    assert math.isclose(
        float(chart.get_attribute("data-last")), math.exp(-199 * 0.1 / 10), rel_tol=1e-9
    )
    assert chart.locator("canvas").count() == 1
    assert "200 points" in page.inner_text("[data-metric=loss] [data-testid=readout]")
    assert page.inner_text("[data-metric=acc] [data-testid=metric-value]") == "0.8"
    table = page.locator("[data-metric=per_class] [data-testid=metric-table]")
    assert table.get_attribute("data-rows") == "3" and "0.75" in table.inner_text()
    cells = page.locator(
        "[data-metric=confusion] [data-testid=confusion-matrix] td"
    ).all_inner_texts()
    assert cells == ["5", "1", "2", "7"]
    for name, attribute, value in [
        ("residuals", "data-points", "3"),  # the reference's chart kinds, drawn
        ("predictions", "data-points", "3"),
        ("accuracy", "data-series", "2"),
        ("per_epoch", "data-points", "3"),
    ]:
        drawn = page.locator(f"[data-metric={name}] [data-testid=chart]")
        assert drawn.get_attribute(attribute) == value, name
        assert drawn.locator("canvas").count() == 1, name
    image = page.locator("[data-metric=sample] [data-testid=metric-image]")
    wait_until(
        lambda: image.evaluate("img => img.complete && img.naturalWidth") == 8, what="the image"
    )
    chart.hover()  # the legend reads the value under the cursor
    wait_until(
        lambda: re.search(
            r"\d", page.locator("[data-metric=loss] .u-legend .u-value").nth(1).inner_text()
        ),
        what="a legend value",
    )
    screenshot(page, "run-metrics-charts")


def test_compare_shows_differences_and_the_code_diff(page: Any, studio: Studio) -> None:
    open_path(
        page, studio, "/experiments/ui-metrics", "[data-testid=runs-table] tbody tr[data-run-id]"
    )
    assert page.locator("[data-testid=compare]").is_disabled()
    for run in (studio.runs["first"], studio.runs["second"]):
        page.locator(f"tr[data-run-id='{run}'] input[type=checkbox]").check()
    page.click("[data-testid=compare]")
    page.wait_for_selector("[data-testid=compare-diff] [data-testid=code-diff]")
    assert "/compare?runs=" in page.url
    added = page.locator("[data-testid=code-diff] .d-add").all_inner_texts()
    assert "+# variant two" in added
    assert (
        page.locator("[data-testid=compare-tags] tr[data-key=team]").get_attribute("data-differs")
        == "true"
    )
    assert (
        page.locator("[data-testid=compare-metrics] tr[data-key=acc]").get_attribute("data-differs")
        == "true"
    )
    chart = page.wait_for_selector("[data-testid=compare-chart] [data-testid=chart]")
    assert chart.get_attribute("data-series") == "2"
    screenshot(page, "compare")


def test_live_log_grows_while_the_run_runs(page: Any, studio: Studio) -> None:
    run = studio.submit("slow.py", experiment="ui-live", wait=False)
    try:
        open_path(page, studio, f"/runs/{run}?tab=log", "[data-testid=log-text]")
        log = page.locator("[data-testid=log-text]")
        wait_until(lambda: "tick 2" in log.inner_text(), timeout=30, what="the first lines")
        seen = log.inner_text().count("tick ")
        wait_until(
            lambda: log.inner_text().count("tick ") >= seen + 5, what="more lines without a reload"
        )
        assert "live" in page.inner_text("[data-testid=log-state]")
        screenshot(page, "run-log-live")
    finally:
        studio.ferry("runs", "cancel", run)


def test_a_live_runs_chart_grows_without_a_reload(page: Any, studio: Studio) -> None:
    run = studio.submit("slow.py", experiment="ui-live", wait=False)
    try:
        open_path(page, studio, f"/runs/{run}?tab=metrics", "[data-metric=tick]")
        chart = page.locator("[data-metric=tick] [data-testid=chart]")
        first = wait_until(
            lambda: chart.count() and int(chart.get_attribute("data-points")),
            timeout=30,
            what="a chart",
        )
        wait_until(lambda: int(chart.get_attribute("data-points")) >= first + 5, what="more points")
        assert float(chart.get_attribute("data-last")) >= first + 4
    finally:
        studio.ferry("runs", "cancel", run)


def test_cancel_button_cancels_the_run(page: Any, studio: Studio) -> None:
    run = studio.submit("slow.py", experiment="ui-live", wait=False)
    open_path(page, studio, f"/runs/{run}", "[data-testid=run-page]")
    wait_until(
        lambda: page.get_attribute("[data-testid=run-page]", "data-status") == "Running",
        timeout=30,
        what="Running",
    )
    page.click("[data-testid=cancel]")
    wait_until(
        lambda: page.get_attribute("[data-testid=run-page]", "data-status") == "Canceled",
        timeout=30,
        what="Canceled on the page",
    )
    assert studio.status(run) == "Canceled"
    assert page.locator("[data-testid=cancel]").count() == 0
    screenshot(page, "run-canceled")


def test_status_badges_in_the_table_update_live(page: Any, studio: Studio) -> None:
    run = studio.submit("slow.py", experiment="ui-badges", wait=False)
    open_path(page, studio, "/experiments/ui-badges", f"tr[data-run-id='{run}']")
    row = page.locator(f"tr[data-run-id='{run}']")
    wait_until(
        lambda: row.get_attribute("data-status") == "Running",
        timeout=30,
        what="Running in the table",
    )
    studio.ferry("runs", "cancel", run)
    wait_until(
        lambda: row.get_attribute("data-status") == "Canceled",
        timeout=30,
        what="Canceled without a reload",
    )
    assert row.locator("[data-status=Canceled]").count() == 1


def test_a_huge_log_is_paged_with_load_earlier(page: Any, studio: Studio) -> None:
    open_path(page, studio, f"/runs/{studio.runs['big_log']}?tab=log", "[data-testid=load-earlier]")
    log = page.locator("[data-testid=log-text]")
    assert "line 03999" in log.inner_text() and "line 00000 " not in log.inner_text()
    for _ in range(10):  # 400 KB in pages of 256 KB: one or two clicks
        start = log.get_attribute("data-start")
        if start == "0":
            break
        page.click("[data-testid=load-earlier]")
        wait_until(
            lambda start=start: log.get_attribute("data-start") != start, what="an earlier page"
        )
    assert log.get_attribute("data-start") == "0"
    assert page.locator("[data-testid=load-earlier]").count() == 0
    text = log.inner_text()
    assert "line 00000 " in text and "line 03999" in text and text.count("line ") == 4000


def test_unknown_run_and_experiment_show_not_found(page: Any, studio: Studio) -> None:
    open_path(page, studio, "/runs/no-such-run", "[data-testid=not-found]")
    assert "no-such-run" in page.inner_text("[data-testid=not-found]")
    screenshot(page, "not-found")
    open_path(page, studio, "/experiments/no-such-experiment", "[data-testid=not-found]")
    assert "no-such-experiment" in page.inner_text("[data-testid=not-found]")


def test_sweep_page_ranks_children_and_draws_parallel_coordinates(
    page: Any, studio: Studio
) -> None:
    sweep = studio.runs["sweep"]
    open_path(page, studio, f"/runs/{sweep}", "[data-testid=sweep-table] tbody tr")
    table = page.locator("[data-testid=sweep-table] tbody tr")
    assert table.count() == 3
    assert "best" in table.first.inner_text() and "0.9" in table.first.inner_text()
    # the children the bandit policy stopped are marked, with its reason
    assert studio.stopped_early, "the sweep's bandit policy stopped no child (too fast a machine?)"
    marked = page.eval_on_selector_all(
        "[data-testid=sweep-table] tr[data-early=true]", "rows => rows.map(r => r.dataset.runId)"
    )
    assert set(marked) == studio.stopped_early
    for run_id in marked:
        assert "Bandit" in page.inner_text(f"[data-testid=sweep-table] tr[data-run-id='{run_id}']")
    svg = page.wait_for_selector("[data-testid=parcoords]")
    assert svg.get_attribute("data-lines") == "3"
    assert page.locator("[data-testid=parcoords] polyline").count() == 3
    chart = page.wait_for_selector("[data-testid=sweep-chart]")
    assert chart.get_attribute("data-series") == "3"
    screenshot(page, "sweep")
    page.click("[role=tab][data-tab=children]")
    wait_until(lambda: len(rows(page)) == 3, what="the children table")
    screenshot(page, "run-children")


def test_tags_are_edited_inline(page: Any, studio: Studio) -> None:
    run = studio.runs["first"]
    open_path(page, studio, f"/runs/{run}?tab=overview", "[data-testid=tags]")
    page.get_by_label("New tag name").fill("reviewed")
    page.get_by_label("New tag value").fill("yes")
    page.get_by_role("button", name="Add tag").click()
    page.wait_for_selector("[data-tag=reviewed]")
    page.get_by_role("button", name="Remove tag reviewed").click()
    wait_until(lambda: page.locator("[data-tag=reviewed]").count() == 0, what="the tag removed")
    page.reload()
    page.wait_for_selector("[data-tag=team]")
    assert page.locator("[data-tag=reviewed]").count() == 0


def test_rerun_opens_the_new_run(page: Any, studio: Studio) -> None:
    run = studio.runs["first"]
    open_path(page, studio, f"/runs/{run}", "[data-testid=rerun]")
    page.click("[data-testid=rerun]")
    page.wait_for_url(lambda url: "/runs/" in url and run not in url)
    page.wait_for_selector("[data-testid=run-page]")
    wait_until(
        lambda: page.get_attribute("[data-testid=run-page]", "data-status") == "Completed",
        timeout=60,
        what="the rerun to complete",
    )


def test_embed_hides_the_header(page: Any, studio: Studio) -> None:
    open_path(page, studio, f"/runs/{studio.runs['first']}?embed=1", "[data-testid=run-page]")
    assert page.locator("header.top").count() == 0
    screenshot(page, "run-embed")


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
