"""Live parts of the pages in Chromium: the session page's one poll (a sent message leaves
the pending list once recorded, the page says when updates fail or stop and backs off, and
the poll stops for good once the session is no longer the person's), the list page's one
poll for its live rows, toasts."""

from __future__ import annotations

import re
import time

import pytest
from django.utils import timezone

from sessions_app.models import Membership, OutboxAction, Session
from tests.browser.conftest import sign_in, wait_until
from tests.factories import ActivityFactory, ConnectionFactory, SessionFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _session(cast, state="AWAITING_USER_FEEDBACK"):
    connection = ConnectionFactory(team=cast.team, label="Acme Jules")
    return SessionFactory(connection=connection, title="Live one", state=state)


def test_a_sent_message_recorded_before_the_next_poll_leaves_the_pending_list(
    page, live_server, cast
):
    session = _session(cast)
    held = {"on": False}

    def live_poll(route):
        # While held, the poll answers "unchanged", as if it had asked just before.
        if held["on"]:
            route.fulfill(status=204)
        else:
            route.continue_()

    page.route(re.compile(rf".*/sessions/{session.pk}/live/.*"), live_poll)
    sign_in(page, live_server, "member")
    page.goto(f"{live_server.url}/sessions/{session.pk}/")
    held["on"] = True
    page.fill("#id_message", "Carry on with the tests")
    page.keyboard.press("Control+Enter")
    pending = f"#session-{session.pk}-pending"
    page.wait_for_selector(f"{pending} >> text=Carry on with the tests")
    # Delivered and recorded by Jules before the page polls again.
    OutboxAction.objects.filter(kind="message").update(status="done", delivered_at=timezone.now())
    ActivityFactory(
        session=session, kind="userMessaged", originator="user", message="Carry on with the tests"
    )
    held["on"] = False
    page.wait_for_selector("#timeline >> text=Carry on with the tests")
    wait_until(lambda: page.locator(f"{pending} .pending").count() == 0, timeout=10)
    # Named once, after the person who sent it.
    assert page.locator("text=Carry on with the tests").count() == 1
    assert page.inner_text("#timeline .activity.from-user .who") == "member"


def test_it_says_when_live_updates_fail_backs_off_and_recovers(
    page, live_server, cast, browser_problems
):
    session = _session(cast, state="IN_PROGRESS")
    # What the browser and htmx log while the server is gone.
    browser_problems.allow(r"ERR_CONNECTION_REFUSED|htmx:sendError|htmx:afterRequest")
    attempts: list[float] = []

    def server_gone(route):
        attempts.append(time.monotonic())
        route.abort("connectionrefused")

    sign_in(page, live_server, "viewer")
    page.goto(f"{live_server.url}/sessions/{session.pk}/")
    assert page.inner_text("[data-live-status]") == "Updates live"
    pattern = re.compile(rf".*/sessions/{session.pk}/live/.*")
    page.route(pattern, server_gone)
    page.wait_for_selector("[data-live-alert]:has-text('Live updates paused')", timeout=10_000)
    assert page.inner_text("[data-live-status]") == "Updates paused"
    assert "Retrying in" in page.inner_text("[data-live-alert]")
    first = attempts[0]
    page.wait_for_timeout(13_000)
    # One poller every 3 s would try four or five times in 13 s; backing off, fewer.
    assert len([t for t in attempts if t - first < 13]) <= 3, attempts
    page.unroute(pattern)
    page.wait_for_selector("[data-live-alert]", state="hidden", timeout=30_000)
    assert page.inner_text("[data-live-status]") == "Updates live"

    # The session ends: the note no longer claims that updates are live.
    Session.objects.filter(pk=session.pk).update(state="COMPLETED")
    page.wait_for_selector("[data-live-status][data-live=stopped]", timeout=10_000)
    assert "No more updates" in page.inner_text("[data-live-status]")
    page.wait_for_selector(".session-header >> text=Completed")
    assert page.locator("[hx-trigger*='every']").count() == 0


def test_the_poll_stops_and_says_so_once_the_session_is_no_longer_theirs(
    page, live_server, cast, browser_problems
):
    session = _session(cast, state="IN_PROGRESS")
    # The one 404 answer is expected: the harness lists every 4xx, and Chromium logs a
    # failed load as a console line of its own. Nothing else may be logged (htmx's
    # responseError is not: the page handles the answer).
    browser_problems.allow(r"HTTP 404: GET .*/live/|status of 404 \(Not Found\) .*/live/")
    polls: list[float] = []
    page.on(
        "request",
        lambda request: polls.append(time.monotonic()) if "/live/" in request.url else None,
    )
    sign_in(page, live_server, "viewer")
    with page.expect_request(re.compile(r".*/live/.*"), timeout=10_000):
        page.goto(f"{live_server.url}/sessions/{session.pk}/")
    # The viewer moves to another team: the session is no longer theirs to see. (One
    # UPDATE, as the other tests here write while the page polls.)
    Membership.objects.filter(user=cast.viewer, team=cast.team).update(team=cast.other_team)
    page.wait_for_selector("[data-live-alert]:has-text('Live updates stopped')", timeout=10_000)
    assert page.inner_text("[data-live-status]") == "Updates stopped"
    stopped_at = len(polls)
    # A poll every 3 s would ask twice more in 7 s; a stopped one does not ask at all.
    page.wait_for_timeout(7_000)
    assert len(polls) == stopped_at, polls
    # What the page showed stays in place.
    assert page.locator(".session-header >> text=Live one").count() == 1


def test_the_session_page_polls_once_and_swaps_only_what_changed(page, live_server, cast):
    session = _session(cast, state="IN_PROGRESS")
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/sessions/" in r.url else None)
    sign_in(page, live_server, "member")
    page.goto(f"{live_server.url}/sessions/{session.pk}/")
    page.fill("#id_message", "Half typed")
    polls.clear()
    ActivityFactory(session=session, kind="agentMessaged", message="News from Jules")
    page.wait_for_selector("#timeline >> text=News from Jules", timeout=10_000)
    Session.objects.filter(pk=session.pk).update(state="AWAITING_USER_FEEDBACK")
    page.wait_for_selector(".session-header >> text=Awaiting feedback", timeout=10_000)
    page.wait_for_selector("#session-announcer:has-text('Awaiting feedback')")
    # One address asked, nothing else; the typed text stays; the activity came once.
    assert polls and {re.sub(r"\?.*", "", url) for url in polls} == {
        f"{live_server.url}/sessions/{session.pk}/live/"
    }, polls
    assert page.input_value("#id_message") == "Half typed"
    assert page.locator("text=News from Jules").count() == 1
    assert page.locator(f"#session-{session.pk}-header").count() == 1


def test_the_list_polls_once_for_its_live_rows_and_keeps_the_selection(page, live_server, cast):
    connection = ConnectionFactory(team=cast.team, label="Acme Jules")
    live = SessionFactory(
        connection=connection, title="Row that moves", state="IN_PROGRESS", launched_by=cast.member
    )
    other = SessionFactory(
        connection=connection, title="Row that waits", state="PLANNING", launched_by=cast.member
    )
    SessionFactory(connection=connection, title="Row at rest", state="COMPLETED")
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/sessions/" in r.url else None)
    sign_in(page, live_server, "member")
    page.goto(f"{live_server.url}/sessions/")
    polls.clear()
    page.check(f"#select-{live.pk}")
    Session.objects.filter(pk=live.pk).update(state="AWAITING_USER_FEEDBACK")
    page.wait_for_selector(f"#session-{live.pk} >> text=Awaiting feedback", timeout=15_000)
    # The swapped row keeps its tick; only the live rows were asked for, in one request.
    assert page.is_checked(f"#select-{live.pk}")
    asked = [url for url in polls if "/sessions/live-rows" in url]
    assert asked and len(asked) == len(polls), polls
    assert f"{live.pk}%3A" in asked[0] and f"{other.pk}%3A" in asked[0]
    # Both rest: the last answer stops the poll, and no row is asked for any more.
    Session.objects.filter(pk__in=[live.pk, other.pk]).update(state="COMPLETED")
    page.wait_for_selector(f"#session-{other.pk} >> text=Completed", timeout=15_000)
    page.wait_for_selector(f"#session-{live.pk} >> text=Completed")
    assert page.is_checked(f"#select-{live.pk}")
    assert page.locator("tr.session-row[data-live]").count() == 0
    count = len(polls)
    page.wait_for_timeout(6_000)
    assert len(polls) == count, polls


def test_errors_stay_until_dismissed_and_other_toasts_go(page, live_server, cast):
    session = _session(cast, state="COMPLETED")
    sign_in(page, live_server, "member")
    page.goto(f"{live_server.url}/sessions/{session.pk}/")
    page.evaluate("window.portalToast('success', 'Done it')")
    page.evaluate("window.portalToast('error', 'Jules refused')")
    page.wait_for_selector(".toast-success >> text=Done it")
    page.wait_for_selector(".toast-success", state="detached", timeout=10_000)
    page.wait_for_timeout(1_000)
    assert page.is_visible(".toast-error >> text=Jules refused")
    page.click(".toast-error [data-dismiss-toast]")
    page.wait_for_selector(".toast-error", state="detached")


def test_the_inbox_shows_a_new_plan_and_the_header_counts_it_without_a_reload(
    page, live_server, cast
):
    connection = ConnectionFactory(team=cast.team, label="Acme Jules")
    sign_in(page, live_server, "approver")
    page.goto(f"{live_server.url}/approvals/")
    page.wait_for_selector("text=Nothing waits for your approval.")
    assert page.is_hidden("#nav-approvals-count")
    session = SessionFactory(
        connection=connection, title="Fresh plan to approve", state="AWAITING_PLAN_APPROVAL"
    )
    ActivityFactory(session=session, kind="planGenerated", plan_id="f" * 32, plan_steps=[])
    page.wait_for_selector("#approvals >> text=Fresh plan to approve", timeout=15_000)
    page.wait_for_selector("#nav-approvals-count:has-text('1')")
    assert page.is_visible(f"#approval-row-{session.pk} summary:has-text('Request changes')")
