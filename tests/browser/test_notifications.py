"""The bell in Chromium (issue 14): with two pages open, a plan arriving in the simulator
raises the bell's count on the other page without a reload, and the notification's link
opens the approval."""

from __future__ import annotations

import re

import pytest

from jules.client import JulesClient
from sessions_app import sync
from sessions_app.notifications import delivery
from tests.browser.conftest import sign_in
from tests.factories import ConnectionFactory, SessionFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _a_plan_arrives(simulator, connection, cast):
    """A session whose plan waits in the simulator, synced as the worker would."""
    client = JulesClient("test-key", simulator.base_url)
    remote = client.create_session(
        prompt="Add tests [sim:plan_approval]",
        source="sources/github/acme/billing",
        starting_branch="main",
        require_plan_approval=True,
    )
    session = sync.upsert_remote_session(connection, remote, launched_by=cast.member)
    simulator.advance(70)
    sync.sync_one_session(session.pk)
    return session


def test_a_waiting_plan_rings_the_bell_on_an_open_page(
    page, live_server, cast, simulator, screenshot
):
    connection = ConnectionFactory(team=cast.team, base_url=simulator.base_url, api_key="test-key")
    sign_in(page, live_server, "approver")
    other = page.context.new_page()
    other.goto(f"{live_server.url}/teams/")
    badge = other.locator("#notification-count")
    assert badge.is_hidden()

    session = _a_plan_arrives(simulator, connection, cast)
    delivery.fan_out_pending()  # The worker's part.

    other.wait_for_selector("#notification-count:has-text('1')", state="visible")
    assert other.url.endswith("/teams/")  # No reload, no navigation.
    screenshot("20-bell")
    other.click("#notification-bell")
    other.wait_for_url(re.compile(r".*/notifications/$"))
    other.click(".notification-link")
    other.wait_for_url(re.compile(rf".*/sessions/{session.pk}/#plan-heading$"))
    other.wait_for_selector("button:has-text('Approve plan')")


# Records each `new Notification(...)` the page makes (the real one is still built), so
# the test sees the popup that headless Chromium draws nowhere.
_RECORD_NOTIFICATIONS = """
(() => {
  const Real = window.Notification;
  if (!Real) return;
  window.__notifications = [];
  class Recorded extends Real {
    constructor(title, options) {
      super(title, options);
      window.__notifications.push({ title, body: (options || {}).body, popup: this });
    }
  }
  window.Notification = Recorded;
})();
"""


def test_browser_notifications_pop_up_for_people_who_turned_them_on(
    page, live_server, cast, simulator
):
    page.context.grant_permissions(["notifications"], origin=live_server.url)
    page.context.add_init_script(_RECORD_NOTIFICATIONS)
    connection = ConnectionFactory(team=cast.team, base_url=simulator.base_url, api_key="test-key")
    sign_in(page, live_server, "approver")
    page.goto(f"{live_server.url}/notifications/preferences/")
    toggle = page.locator("#browser-notifications-toggle")
    assert toggle.inner_text() == "Turn on browser notifications"
    toggle.click()
    page.wait_for_selector("#browser-notifications-toggle:has-text('Turn off')")
    assert page.evaluate("localStorage.getItem('portal.browserNotifications')") == "on"

    page.goto(f"{live_server.url}/teams/")
    page.wait_for_function("() => window.__notifications !== undefined")
    # What was unread when the page opened pops up nothing; only what arrives afterwards.
    page.wait_for_timeout(500)
    assert page.evaluate("window.__notifications.length") == 0
    session = _a_plan_arrives(simulator, connection, cast)
    delivery.fan_out_pending()

    page.wait_for_function("() => window.__notifications.length > 0", timeout=15_000)
    page.wait_for_timeout(4500)  # Another poll: the same notification does not pop up twice.
    shown = page.evaluate("window.__notifications.map(n => n.title)")
    assert len(shown) == 1 and shown[0].startswith("A plan is waiting for approval")
    # Clicking the popup opens the approval.
    page.evaluate("window.__notifications[0].popup.onclick()")
    page.wait_for_url(re.compile(rf".*/sessions/{session.pk}/#plan-heading$"))
    page.wait_for_selector("button:has-text('Approve plan')")


def test_no_popup_without_the_persons_consent(page, live_server, cast, simulator):
    page.context.grant_permissions(["notifications"], origin=live_server.url)
    page.context.add_init_script(_RECORD_NOTIFICATIONS)
    sign_in(page, live_server, "approver")
    page.goto(f"{live_server.url}/teams/")
    page.wait_for_function("() => window.__notifications !== undefined")
    page.wait_for_timeout(500)
    SessionFactory(connection__team=cast.team, state="AWAITING_PLAN_APPROVAL")
    from sessions_app.models import Event
    from sessions_app.notifications import events

    session = cast.team.sessions.get()
    events.record([events.session_event(session, "plan.awaiting_approval", f"{session.pk}:test")])
    delivery.fan_out_pending()
    assert Event.objects.count() == 1
    page.wait_for_selector("#notification-count:has-text('1')", state="visible")
    # The bell counts it; the browser shows nothing, since the person never turned it on.
    assert page.evaluate("window.__notifications.length") == 0
