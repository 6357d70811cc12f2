"""A pytest plugin: on CI (REQUIRE_SERVICES=1 or REQUIRE_BROWSER=1) a skipped test is a failed
one, so whatever skips itself, now or in a test written later, fails the run instead of passing
quietly. Loaded by `tests/conftest.py`."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from tests.services import skips_forbidden


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and skips_forbidden():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped on CI, where nothing may skip: {reason}"
