"""The pages a team lives in, driven in Chromium against a live server and the simulator.

Sign in, launch a session, watch it reach plan approval without reloading, approve it,
answer the agent's question, watch it complete with its diff and pull request; then
filter and search the list, keep a ticked box through a row's poll, and bulk-archive.
Screenshots of the main pages land in test-artifacts/screenshots/.

No Celery worker runs: Celery is eager in the live server's process, and the sync that
a worker would run on its schedule is called from the test after moving the simulator's
manual clock, which is what makes each state visible.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from sessions_app import sync
from sessions_app.connections.client import sync_client
from sessions_app.models import OutboxAction, Session
from tests.browser.conftest import sign_in, wait_until
from tests.factories import ConnectionFactory, SessionFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _advance(simulator, session, seconds):
    """Move Jules' clock, then sync the session as the worker's schedule would."""
    simulator.advance(seconds)
    sync.sync_one_session(session.pk)
    session.refresh_from_db()


def test_it_walks_a_session_from_launch_to_pull_request(
    page, live_server, cast, simulator, eager_celery, screenshot
):
    connection = ConnectionFactory(
        team=cast.team, label="Acme Jules", base_url=simulator.base_url, api_key="test-key"
    )
    sync.sync_connection(connection.pk)
    sign_in(page, live_server, "approver")
    page.wait_for_selector("text=No sessions yet.")
    screenshot("01-sessions-empty")

    page.click("a:has-text('Launch a session')")
    page.wait_for_url(re.compile(r".*/sessions/new$"))
    page.select_option("#id_source", label="acme/billing")
    # Choosing the repository reloads its branches, with the default one chosen.
    page.wait_for_selector("select#id_branch")
    assert page.input_value("#id_branch") == "main"
    assert page.is_disabled("#id_require_plan_approval")  # Acme's policy forces it.
    page.fill("#id_prompt", "Add invoice rounding tests [sim:question]")
    page.check("#id_auto_create_pr")
    screenshot("02-launch-form")
    page.click("button:has-text('Launch')")
    page.wait_for_url(re.compile(r".*/sessions/\d+/$"))
    session = Session.objects.get()
    assert session.launched_by == cast.approver and session.starting_branch == "main"

    # From here on nothing reloads the page: the header and the timeline poll.
    page.click(f"#session-{session.pk}-prompt summary")
    _advance(simulator, session, 70)
    assert session.state == "AWAITING_PLAN_APPROVAL"
    page.wait_for_selector(".session-header >> text=Awaiting plan approval")
    page.wait_for_selector(
        "#session-announcer:has-text('The session is now: Awaiting plan approval.')",
        state="attached",
    )
    # What the person opened stays open while the page updates around it.
    assert page.eval_on_selector(f"#session-{session.pk}-prompt", "e => e.open")
    page.wait_for_selector(".plan-card li.step-todo")
    page.wait_for_selector("button:has-text('Approve plan')")
    screenshot("03-awaiting-approval")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Approve plan')")
    page.wait_for_selector("text=/Approved by approver|Approval pending delivery/")
    wait_until(lambda: OutboxAction.objects.filter(kind="approve", status="done").exists())
    assert simulator.request_counts()["sessions.approvePlan"] == 1

    _advance(simulator, session, 120)
    assert session.state == "AWAITING_USER_FEEDBACK"
    page.wait_for_selector(".session-header >> text=Awaiting feedback")
    page.wait_for_selector(".plan-card li.step-current")
    page.fill("#id_message", "Round half away from zero, please.")
    page.keyboard.press("Control+Enter")
    # The message shows at once (pending, then in the timeline) and the composer empties.
    page.wait_for_selector("text=Round half away from zero, please.")
    wait_until(lambda: page.input_value("#id_message") == "")
    wait_until(lambda: OutboxAction.objects.filter(kind="message", status="done").exists())

    _advance(simulator, session, 1800)
    assert session.state == "COMPLETED"
    page.wait_for_selector(".session-header >> text=Completed", timeout=20_000)
    page.wait_for_selector("#timeline >> text=Session completed.")
    # The outputs arrive with the last activities, still without a reload.
    page.wait_for_selector(".output-changes .diff-viewer")
    assert page.locator(".output-changes .diff-add").count() > 0
    assert page.locator(".output-pr a[href*='/pull/']").count() == 1
    assert page.locator("a:has-text('Download the patch')").count() >= 1
    # Polling has stopped: no live trigger is left on the page.
    wait_until(lambda: page.locator("[hx-trigger*='every']").count() == 0, timeout=10)
    screenshot("04-completed-with-diff")

    page.reload()
    assert "Round half away from zero, please." in page.inner_text("#timeline")
    page.click("summary:has-text('History')")
    page.wait_for_selector(".history-list")


def test_it_filters_searches_keeps_ticks_and_bulk_archives(
    page, live_server, cast, simulator, eager_celery, screenshot
):
    connection = ConnectionFactory(
        team=cast.team, label="Acme Jules", base_url=simulator.base_url, api_key="test-key"
    )
    # Sessions that exist on Jules, so that archiving them reaches it; their cached rows
    # then get the titles and states this test needs (no sync runs afterwards).
    client = sync_client(connection)
    wanted = [
        ("Alpha task 0", "COMPLETED"),
        ("Alpha task 1", "COMPLETED"),
        ("Alpha task 2", "COMPLETED"),
        ("Beta task", "FAILED"),
        ("Gamma live", "IN_PROGRESS"),
    ]
    for title, _ in wanted:
        client.create_session(prompt=f"{title} [sim:stall step=0]", title=title)
    sync.sync_connection(connection.pk)
    for title, state in wanted:
        Session.objects.filter(title=title).update(
            state=state, launched_by=cast.admin if title.startswith("Alpha") else None
        )
    live = Session.objects.get(title="Gamma live")
    sign_in(page, live_server, "admin")
    screenshot("05-sessions-list")

    page.fill("#id_q", "alpha")
    page.wait_for_url(re.compile(r".*q=alpha.*"))
    expect(page.locator("#session-results tbody tr")).to_have_count(3)
    assert "Beta task" not in page.inner_text("#session-results")
    page.check("input[name=state][value=COMPLETED]")
    page.wait_for_url(re.compile(r".*state=COMPLETED.*"))
    assert page.inner_text("#state-count-COMPLETED") == "3"
    assert page.inner_text("#state-count-FAILED") == "0"
    screenshot("06-filtered-list")
    # The URL is the state: going back restores the search without the state filter.
    # Going back reloads the page (htmx keeps no copies of no-store pages, and refreshes on a
    # history miss), a moment after the URL changes: wait for that reload's own load event,
    # or the next navigation is cut short by it.
    with page.expect_event("load"):
        page.go_back()
    page.wait_for_url(re.compile(r".*q=alpha$"))
    expect(page.locator("#session-results tbody tr")).to_have_count(3)
    assert page.locator("input[name=state][value=COMPLETED]").is_checked() is False

    # A ticked row that polls itself stays ticked.
    page.goto(f"{live_server.url}/sessions/")
    page.check(f"#select-{live.pk}")
    Session.objects.filter(pk=live.pk).update(title="Gamma live, renamed")
    page.wait_for_selector("text=Gamma live, renamed", timeout=12_000)
    assert page.is_checked(f"#select-{live.pk}")
    page.uncheck(f"#select-{live.pk}")

    page.fill("#id_q", "alpha")
    expect(page.locator("#session-results tbody tr")).to_have_count(3)
    page.check("#select-all")
    page.select_option("#bulk-action", "archive")
    page.click("#bulk button:has-text('Apply')")
    page.wait_for_selector("text=Archived 3 sessions.")
    assert Session.objects.filter(archived=True).count() == 3
    page.wait_for_selector("text=No sessions match these filters.")
    page.select_option("#id_archived", "only")
    expect(page.locator("#session-results tbody tr")).to_have_count(3)


def test_it_fits_a_phone(page, live_server, cast, screenshot):
    connection = ConnectionFactory(team=cast.team, label="Acme Jules")
    session = SessionFactory(connection=connection, title="Phone check", state="COMPLETED")
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, live_server, "viewer")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot("07-phone-list")
    page.goto(f"{live_server.url}/sessions/{session.pk}/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot("08-phone-session")


def test_it_closes_the_composer_when_the_session_fails_and_keeps_the_text(page, live_server, cast):
    connection = ConnectionFactory(team=cast.team, label="Acme Jules")
    session = SessionFactory(connection=connection, title="Doomed", state="IN_PROGRESS")
    sign_in(page, live_server, "member")
    page.goto(f"{live_server.url}/sessions/{session.pk}/")
    page.fill("#id_message", "Half-written thought")
    Session.objects.filter(pk=session.pk).update(state="FAILED")
    page.wait_for_selector("#id_message:disabled", timeout=10_000)
    assert page.is_visible("text=A failed session does not take messages.")
    assert page.input_value("#id_message") == "Half-written thought"
    assert page.is_hidden("#composer-send")
    wait_until(lambda: page.locator("[hx-trigger*='every']").count() == 0, timeout=10)
