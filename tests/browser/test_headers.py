"""The Content-Security-Policy in Chromium: the portal's pages and htmx run under it, and an
inline script is refused."""

from __future__ import annotations

import pytest

from tests.browser.conftest import sign_in, wait_until
from tests.factories import ConnectionFactory, SessionFactory

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = ["/sessions/", "/sessions/new", "/approvals/", "/teams/", "/teams/acme/", "/audit/"]


def test_it_runs_the_portal_under_its_content_security_policy(page, live_server, cast):
    connection = ConnectionFactory(team=cast.team, label="Main")
    session = SessionFactory(connection=connection, launched_by=cast.member, state="IN_PROGRESS")
    sign_in(page, live_server, "admin")
    for path in [*PAGES, f"/sessions/{session.pk}/"]:
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 200, path
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "unsafe-inline" not in policy
        assert response.headers["cache-control"] == "no-store, private"
        # htmx runs, and injected no style of its own.
        assert page.evaluate("typeof htmx") == "object"
        assert page.evaluate("htmx.config.includeIndicatorStyles") is False
        assert page.locator("head style").count() == 0
    # The session page polls through htmx; the poll reaches the server under the policy.
    with page.expect_response(lambda r: f"/sessions/{session.pk}/live/" in r.url):
        page.goto(f"{live_server.url}/sessions/{session.pk}/")


def test_it_refuses_an_inline_script(page, live_server, cast, csp_violations, browser_problems):
    # The refusal is what this test provokes: its console error is expected here alone.
    browser_problems.allow("violates the following Content Security Policy")
    sign_in(page, live_server, "viewer")
    page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.injected = true";
          document.body.append(script);
        }"""
    )
    # Playwright delivers the page's reports while the test calls into it.
    wait_until(lambda: bool(csp_violations) or page.wait_for_timeout(100) or False)
    assert page.evaluate("window.injected") is None
    assert csp_violations[0].startswith("script-src")
    csp_violations.clear()
