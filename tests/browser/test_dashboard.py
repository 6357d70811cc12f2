"""The whole path in Chromium: sign in, launch, approve, answer, watch it complete; filter;
bulk-archive. Screenshots of the main pages land in test-artifacts/screenshots/."""

from __future__ import annotations

import re

import pytest

from julesweb.celery import app as celery_app
from sessions_app import sync
from sessions_app.models import OutboxAction, Session
from tests.factories import DEFAULT_PASSWORD, ConnectionFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def eager_celery():
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def _wait(predicate, timeout=15.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def _sign_in(page, live_server, username):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/sessions/$"))


def test_it_walks_a_session_from_launch_to_pull_request(
    page, live_server, cast, simulator, eager_celery, screenshot
):
    connection = ConnectionFactory(team=cast.team, base_url=simulator.base_url, api_key="test-key")
    sync.sync_connection(connection.pk)
    _sign_in(page, live_server, "approver")
    screenshot("01-sessions-empty")

    page.goto(f"{live_server.url}/sessions/new")
    page.fill("#id_source", "sources/github/acme/billing")
    page.fill("#id_prompt", "Add rounding tests [sim:question]")
    page.check("#id_auto_create_pr")
    screenshot("02-launch-form")
    page.click("button:has-text('Launch')")
    page.wait_for_url(re.compile(r".*/sessions/\d+/$"))
    session = Session.objects.get()
    assert session.launched_by == cast.approver

    # Nothing reloads the page from here on: the header polls itself.
    simulator.advance(70)
    sync.sync_one_session(session.pk)
    page.wait_for_selector("text=Awaiting plan approval")
    page.wait_for_selector("text=Approve plan")
    screenshot("03-awaiting-approval")
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Approve plan')")
    # The approval is recorded (and delivered, Celery being eager) before the page moves on.
    _wait(lambda: OutboxAction.objects.filter(kind="approve", status="done").exists())
    assert simulator.request_counts()["sessions.approvePlan"] == 1

    simulator.advance(60)
    sync.sync_one_session(session.pk)
    page.reload()
    page.wait_for_selector("text=Awaiting feedback")
    page.fill("#id_message", "Round toward zero, please.")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("text=Message queued for Jules.")

    simulator.advance(900)
    sync.sync_one_session(session.pk)
    page.wait_for_selector(".session-header >> text=Completed", timeout=20_000)
    page.reload()
    page.wait_for_selector("text=Download the patch")
    assert page.locator(".diff-add").count() > 0
    assert page.locator("a:has-text('Pull request')").count() == 1
    assert "Round toward zero, please." in page.content()
    screenshot("04-completed-with-diff")


def test_it_filters_searches_and_bulk_archives(
    page, live_server, cast, simulator, eager_celery, screenshot
):
    from tests.factories import SessionFactory

    connection = ConnectionFactory(team=cast.team, base_url=simulator.base_url, api_key="test-key")
    for index in range(3):
        SessionFactory(
            connection=connection,
            title=f"Alpha task {index}",
            state="COMPLETED",
            launched_by=cast.admin,
        )
    SessionFactory(connection=connection, title="Beta task", state="FAILED")
    _sign_in(page, live_server, "admin")
    page.fill("#id_q", "alpha")
    page.wait_for_url(re.compile(r".*q=alpha.*"))
    page.wait_for_function("document.querySelectorAll('#session-results tbody tr').length === 3")
    assert "Beta task" not in page.inner_text("#session-results")
    screenshot("05-filtered-list")
    for box in page.locator("#session-results input[name=ids]").all():
        box.check()
    page.select_option("#bulk-action", "archive")
    page.click("button:has-text('Apply')")
    page.wait_for_selector("text=Archive: 3 session(s).")
    assert Session.objects.filter(archived=True).count() == 3
    page.goto(f"{live_server.url}/sessions/")
    assert "Alpha task" not in page.inner_text("#session-results")
