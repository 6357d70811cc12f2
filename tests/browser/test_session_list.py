"""The sessions list in Chromium: dense enough to scan, usable from the keyboard, and
filter addresses that hold only the filters in use."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.utils import timezone

from tests.browser.conftest import sign_in, wait_until
from tests.factories import ConnectionFactory, SessionFactory

pytestmark = pytest.mark.django_db(transaction=True)

LONG = (
    "Refactor the invoice rounding so that every currency rounds half to even, "
    "and document why in the billing guide for the finance team"
)


@pytest.fixture
def sessions(cast: Any) -> list[Any]:
    connection = ConnectionFactory(team=cast.team, label="Acme Jules")
    now = timezone.now()
    made = []
    for n in range(40):
        made.append(
            SessionFactory(
                connection=connection,
                title=f"{n:02d} {LONG}",
                state="COMPLETED" if n % 4 else "FAILED",
                repo="acme/billing-service-with-a-long-name",
                starting_branch="feature/rounding-half-even",
                launched_by=cast.member if n % 2 else None,
                create_time=now - dt.timedelta(hours=n),
                last_activity_at=now - dt.timedelta(minutes=30 + n),
            )
        )
    return made


@pytest.fixture
def console_errors(page: Any) -> list[str]:
    """Script errors and failed requests (but /favicon.ico's, which is not this page's)."""
    errors: list[str] = []

    def on_console(message: Any) -> None:
        # A failed load is reported by its response below, with its address.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(message.text)

    def on_response(response: Any) -> None:
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            errors.append(f"{response.status} {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", on_response)
    return errors


def _visible_rows(page: Any) -> int:
    return int(
        page.evaluate(
            """() => Array.from(document.querySelectorAll('#session-results tbody tr'))
                 .filter(row => { const box = row.getBoundingClientRect();
                                  return box.top >= 0 && box.bottom <= window.innerHeight; })
                 .length"""
        )
    )


def test_it_shows_fifteen_one_line_rows_on_a_laptop_screen(
    page, live_server, cast, sessions, console_errors, screenshot
):
    # Two connections failing: one compact notice, and still room for the list.
    ConnectionFactory(
        team=cast.team, label="Old key", sync_status="broken", last_error="Key refused."
    )
    ConnectionFactory(
        team=cast.team, label="Far away", sync_status="error", last_error="Timed out."
    )
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, live_server, "member")
    assert page.locator(".alert").count() == 1
    assert _visible_rows(page) >= 15
    screenshot("list-dense-1280")
    first = sessions[0]
    link = page.locator(f"#session-link-{first.pk}")
    # The title is cut with an ellipsis on one line; the whole of it is in `title`.
    assert link.get_attribute("title") == first.title
    cell = page.locator(f"#session-{first.pk} .title-cell")
    assert cell.evaluate("c => getComputedStyle(c).textOverflow") == "ellipsis"
    assert cell.evaluate("c => c.scrollWidth > c.clientWidth")
    heights = page.evaluate(
        "Array.from(document.querySelectorAll('#session-results tbody tr'))"
        ".map(r => r.getBoundingClientRect().height)"
    )
    assert max(heights) < 40
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert console_errors == []


def test_it_moves_through_the_list_with_the_keyboard(
    page, live_server, cast, sessions, console_errors
):
    sign_in(page, live_server, "viewer")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "id_q"
    # Keys typed into the search box are text, not commands.
    page.keyboard.type("jk")
    assert page.input_value("#id_q") == "jk"
    page.fill("#id_q", "")
    page.wait_for_function("!location.search.includes('q=')")
    page.wait_for_function("document.querySelectorAll('#session-results tbody tr').length > 5")
    page.locator("h1").click()
    rows = page.locator("#session-results tbody tr")
    page.keyboard.press("j")
    assert page.evaluate("document.activeElement.id") == f"session-link-{sessions[0].pk}"
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    second = sessions[1]
    assert page.evaluate("document.activeElement.id") == f"session-link-{second.pk}"
    assert "selected" in (rows.nth(1).get_attribute("class") or "")
    assert page.locator("tr.selected").count() == 1
    # The selection is visible: its row is highlighted and its link outlined.
    background = rows.nth(1).evaluate("r => getComputedStyle(r).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "transparent")
    outline = page.locator(f"#session-link-{second.pk}").evaluate(
        "a => getComputedStyle(a).outlineStyle"
    )
    assert outline != "none"
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf".*/sessions/{second.pk}/$"))
    assert console_errors == []


def _query(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def test_it_keeps_empty_filters_out_of_the_address(page, live_server, cast, sessions):
    sign_in(page, live_server, "viewer")
    page.check("input[name=state][value=FAILED]")
    page.wait_for_url(re.compile(r".*state=FAILED.*"))
    assert _query(page.url) == [("state", "FAILED")]
    page.wait_for_function("document.querySelectorAll('#session-results tbody tr').length === 10")


def test_it_keeps_empty_filters_out_of_a_plain_submit_too(browser, live_server, cast, sessions):
    # Without htmx (its script blocked) the form is submitted by the browser itself.
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.route(re.compile(r".*/htmx[^/]*\.js$"), lambda route: route.abort())
        sign_in(page, live_server, "viewer")
        page.check("input[name=state][value=FAILED]")
        page.fill("#id_q", "rounding")
        page.click("#filters button[type=submit]")
        page.wait_for_url(re.compile(r".*state=FAILED.*"))
        assert sorted(_query(page.url)) == [("q", "rounding"), ("state", "FAILED")]
        assert page.locator("#session-results tbody tr").count() == 10
        # Back on the page, the fields disabled for the submit are usable again.
        page.go_back()
        page.wait_for_url(re.compile(r".*/sessions/$"))
        wait_until(lambda: page.is_enabled("#id_repo"))
    finally:
        context.close()


def test_it_filters_without_script_too(browser, live_server, cast, sessions):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, live_server, "viewer")
        page.check("input[name=state][value=FAILED]")
        page.click("#filters button[type=submit]")
        page.wait_for_url(re.compile(r".*state=FAILED.*"))
        assert page.locator("#session-results tbody tr").count() == 10
    finally:
        context.close()
