"""ferry studio's lists in a real browser: experiments, the runs table (sorted, filtered and paged
on the server, columns chosen, statuses live) and the compare page reached from it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from studio_helpers import Studio, open_path, rows, screenshot, wait_until

pytestmark = pytest.mark.ui


def test_experiments_page_lists_each_experiment_with_its_runs(page: Any, studio: Studio) -> None:
    table = page.locator("[data-testid=experiments-table]")
    metrics = table.locator("tr[data-experiment=ui-metrics]")
    assert metrics.locator("td").nth(1).inner_text() == "2"
    assert table.locator("tr[data-experiment=ui-sweep]").count() == 1
    assert "ws" in page.inner_text("[data-testid=who]")
    assert page.title() == "Experiments · ferry studio"
    screenshot(page, "experiments")
    page.emulate_media(color_scheme="dark")
    screenshot(page, "experiments-dark")
    page.fill("[data-testid=find-experiment]", "pag")
    wait_until(
        lambda: table.locator("tr[data-experiment]").count() == 1, what="one experiment found"
    )
    assert table.locator("tr[data-experiment=ui-paging]").count() == 1
    page.fill("[data-testid=find-experiment]", "")
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
    page.keyboard.press("Escape")  # closes the chooser
    assert page.get_attribute("[data-testid=column-chooser]", "open") is None
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
    # the chart starts on a curve (loss, 200 values a run), overlaid for both runs
    chart = page.locator("[data-testid=compare-chart] [data-testid=chart]")
    wait_until(
        lambda: page.input_value("[data-testid=compare-metric]") == "loss", what="loss chosen"
    )
    wait_until(lambda: chart.get_attribute("data-points") == "400", what="two series of 200")
    assert chart.get_attribute("data-series") == "2"
    screenshot(page, "compare")
