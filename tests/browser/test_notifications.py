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
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_waiting_plan_rings_the_bell_on_an_open_page(
    page, live_server, cast, simulator, screenshot
):
    connection = ConnectionFactory(team=cast.team, base_url=simulator.base_url, api_key="test-key")
    sign_in(page, live_server, "approver")
    other = page.context.new_page()
    other.goto(f"{live_server.url}/teams/")
    badge = other.locator("#notification-count")
    assert badge.is_hidden()

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
    delivery.fan_out_pending()  # The worker's part.

    other.wait_for_selector("#notification-count:has-text('1')", state="visible")
    assert other.url.endswith("/teams/")  # No reload, no navigation.
    screenshot("20-bell")
    other.click("#notification-bell")
    other.wait_for_url(re.compile(r".*/notifications/$"))
    other.click(".notification-link")
    other.wait_for_url(re.compile(rf".*/sessions/{session.pk}/#plan-heading$"))
    other.wait_for_selector("button:has-text('Approve plan')")
