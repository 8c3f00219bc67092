"""A screenshot of the workbench when an end-to-end step fails, beside the steps' own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    outcome = yield
    report = outcome.get_result()
    driver = getattr(item, "funcargs", {}).get("driver")
    if report.when == "call" and report.failed and driver is not None:
        try:
            driver.shot(f"FAILED-{item.name}")
        except Exception:  # the page may be gone: the failure itself is what matters
            pass
