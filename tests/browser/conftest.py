"""Browser tests: Chromium driven through Playwright, against a live server."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.factories import DEFAULT_PASSWORD
from tests.services import browser_problem, skip_or_fail

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture(autouse=True)
def _require_browser() -> None:
    skip_or_fail(browser_problem(), "REQUIRE_BROWSER", "Browser")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser" in str(item.path):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    problem = browser_problem()
    if problem:
        skip_or_fail(problem, "REQUIRE_BROWSER", "Browser")
    from playwright.sync_api import sync_playwright

    # Django refuses database access from an async context, and Playwright's sync API
    # runs an event loop in the test thread; this lets the live server's ORM calls pass.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield instance
        finally:
            instance.close()


class BrowserProblems:
    """What went wrong in the browser during a test: console errors, uncaught exceptions,
    failed requests and answers of 400 or more. Every browser test fails on any of them,
    unless it says it expects one (`allow`, a regular expression)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.allowed: list[re.Pattern[str]] = []

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def add(self, text: str) -> None:
        if not any(pattern.search(text) for pattern in self.allowed):
            self.seen.append(text)

    def watch(self, page: Any) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.add(f"page error: {error}"))
        page.on("requestfailed", self._request_failed)
        page.on("response", self._response)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.add(f"console error: {message.text} ({message.location.get('url', '')})")

    def _request_failed(self, request: Any) -> None:
        failure = request.failure or ""
        # The browser cancelling a request (a navigation, htmx replacing the element that
        # asked) is not a failure of the portal.
        if "ERR_ABORTED" not in failure:
            self.add(f"request failed: {request.method} {request.url}: {failure}")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.add(f"HTTP {response.status}: {response.request.method} {response.url}")


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Tasks run inside the live server's process (no worker in browser tests)."""
    from julesweb.celery import app as celery_app

    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = previous


@pytest.fixture
def browser_problems() -> BrowserProblems:
    return BrowserProblems()


@pytest.fixture
def page(browser: Any, browser_problems: BrowserProblems) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    browser_problems.watch(page)
    try:
        yield page
        seen = list(browser_problems.seen)
    finally:
        context.close()
    if seen:
        pytest.fail("The browser reported problems:\n" + "\n".join(seen), pytrace=False)


@pytest.fixture
def screenshot(page: Any) -> Any:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll `predicate` until it holds, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def sign_in(page: Any, live_server: Any, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/sessions/$"))


# Content-Security-Policy violations, reported from the page as they happen (through a
# binding, so that they survive navigations). Every browser test fails on one; a test that
# provokes one on purpose takes it out of the list.
_REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation(`${event.violatedDirective} ${event.blockedURI} ${event.sourceFile}:${event.lineNumber} ${event.sample} ${event.target && event.target.outerHTML ? event.target.outerHTML.slice(0, 300) : ""}`);
});
"""


@pytest.fixture(autouse=True)
def csp_violations(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    violations: list[str] = []
    if "page" not in request.fixturenames:
        yield violations
        return
    page = request.getfixturevalue("page")
    page.expose_binding("reportCspViolation", lambda source, text: violations.append(text))
    page.add_init_script(_REPORT_CSP_VIOLATIONS)
    yield violations
    if not page.is_closed():
        page.wait_for_timeout(50)  # Lets Playwright deliver reports still on their way.
    assert violations == [], f"Content-Security-Policy violations: {violations}"
