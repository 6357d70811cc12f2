"""The launch queue in Chromium: an admin sets a connection's caps, launches past them, the
queue page says why the extra launches wait, one is cancelled, and the page drains by
itself once Jules has room (docs/launch-queue.md).

No Celery worker runs: Celery is eager in the live server's process; what beat would do
(the sync, and the queue's tick that wakes waiting launches) is called from the test
after moving the simulator's manual clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.utils import timezone

from jules_simulator import SimulatorConfig, start_simulator
from sessions_app import sync
from sessions_app.models import LaunchTicket, OutboxAction, Session, Source
from sessions_app.outbox import delivery
from tests.browser.conftest import sign_in, wait_until
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def capped_simulator() -> Iterator[object]:
    # The account itself allows two sessions at once, as a plan would.
    sim = start_simulator(
        api_keys=["test-key"], manual_clock=True, config=SimulatorConfig(concurrent_cap=2)
    )
    try:
        yield sim
    finally:
        sim.stop()


def _launch(page, live_server, prompt):
    page.goto(f"{live_server.url}/sessions/new")
    page.select_option("#id_source", label="acme/billing")
    page.wait_for_selector("select#id_branch")
    page.uncheck("#id_require_plan_approval")
    page.fill("#id_prompt", prompt)
    page.click("button:has-text('Launch')")
    page.wait_for_url(re.compile(r".*/(sessions/\d+|actions/[0-9a-f-]+)/$"))


def _tick():
    """What beat does: the queue's tick wakes the head, delivery sends it. (Eager, a
    delivery runs inside its publish, so the "a task holds it" mark set after the publish
    is stale at once; a worker's claim would clear it.)"""
    OutboxAction.objects.filter(status="pending").update(
        next_attempt_at=timezone.now(), enqueued_at=None
    )
    delivery.sweep()


def test_launches_wait_in_the_queue_and_the_page_drains(
    page, live_server, cast, capped_simulator, eager_celery, screenshot
):
    sim = capped_simulator
    cast.team.require_plan_approval = False
    cast.team.save()
    connection = ConnectionFactory(
        team=cast.team, label="Acme Jules", base_url=sim.base_url, api_key="test-key"
    )
    sync.sync_connection(connection.pk)
    sign_in(page, live_server, "admin")

    page.goto(f"{live_server.url}/connections/{connection.pk}/")
    page.wait_for_selector("text=Not known yet")
    page.select_option("#id_tier", "custom")
    page.fill("#id_concurrent_cap", "2")
    page.click("button:has-text('Save caps')")
    page.wait_for_selector(f"#connection-{connection.pk}-caps >> text=2 at once")

    for index in range(4):
        _launch(page, live_server, f"Task number {index}")
    # The last one waits, and its page says why.
    page.wait_for_selector("text=Queued:")
    assert Session.objects.count() == 2

    page.goto(f"{live_server.url}/teams/{cast.team.slug}/queue/")
    rows = page.locator("#queue tbody tr[id^=queued-]")
    assert rows.count() == 2
    assert page.locator("[data-queue-count]").inner_text() == "2"
    assert "Concurrent cap reached" in page.inner_text("#queue")
    screenshot("queue-waiting")

    # The admin takes the last launch out of the queue.
    last = LaunchTicket.objects.get(action__payload__prompt="Task number 3")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"#queued-{last.action_id} button:has-text('Cancel')")
    page.wait_for_selector(f"#queued-{last.action_id}", state="detached")
    assert rows.count() == 1

    # Jules finishes the first two; the sync sees it, the tick starts the third.
    sim.advance(3000)
    for session in Session.objects.all():
        sync.sync_one_session(session.pk)
    assert set(Session.objects.values_list("state", flat=True)) == {"COMPLETED"}
    _tick()
    wait_until(lambda: Session.objects.count() == 3)
    # The page polls itself empty, and then stops polling.
    page.wait_for_selector("[data-queue-empty]", timeout=15_000)
    wait_until(lambda: page.locator("#queue[hx-trigger]").count() == 0, timeout=10)
    assert "open the session" in page.inner_text("#queue")
    screenshot("queue-drained")

    statuses = sorted(LaunchTicket.objects.values_list("status", flat=True))
    assert statuses == ["cancelled", "started", "started", "started"]
    [account] = sim.quotas().values()
    assert account["peak_busy"] <= 2 and account["refused_concurrent"] == 0


def test_one_message_to_several_sessions_and_a_re_run(
    page, live_server, cast, simulator, eager_celery, screenshot
):
    from jules.client import JulesClient

    connection = ConnectionFactory(
        team=cast.team, label="Acme Jules", base_url=simulator.base_url, api_key="test-key"
    )
    sync.sync_connection(connection.pk)
    client = JulesClient("test-key", simulator.base_url)
    for index in range(2):
        remote = client.create_session(
            prompt=f"Which way, {index}? [sim:question]", require_plan_approval=False
        )
        sync.upsert_remote_session(connection, remote, launched_by=cast.member)
    failed = client.create_session(
        prompt="Doomed [sim:failure step=0]", require_plan_approval=False
    )
    sync.upsert_remote_session(connection, failed, launched_by=cast.member)
    simulator.advance(600)
    for session in Session.objects.all():
        sync.sync_one_session(session.pk)
    asking = list(Session.objects.filter(state="AWAITING_USER_FEEDBACK"))
    assert len(asking) == 2

    sign_in(page, live_server, "member")
    for session in Session.objects.all():
        page.check(f"#select-{session.pk}")
    page.select_option("#bulk-action", "message")
    page.fill("#bulk-prompt", "Take the second way.")
    page.click("#bulk button:has-text('Apply')")
    page.wait_for_url(re.compile(r".*/sessions/bulk/messages\?.*"))
    # The failed one is named as skipped; the two that asked get the message, live.
    page.wait_for_selector("text=does not await feedback")
    page.wait_for_selector("[data-summary]:has-text('2 delivered, 0 on the way, 0 failed')")
    assert page.locator("#bulk-results tbody tr[data-status=done]").count() == 2
    screenshot("bulk-message")
    assert simulator.request_counts()["sessions.sendMessage"] == 2

    # The failed session runs again from its page, through the prefilled form.
    doomed = Session.objects.get(state="FAILED")
    page.goto(f"{live_server.url}/sessions/{doomed.pk}/")
    page.click("a:has-text('Run again')")
    page.wait_for_selector(f"[data-rerun-of='{doomed.pk}']")
    assert "Doomed" in page.input_value("#id_prompt")
    page.fill("#id_prompt", "Not doomed this time")
    page.click("button:has-text('Launch')")
    page.wait_for_url(re.compile(r".*/sessions/\d+/$"))
    page.wait_for_selector(f"[data-rerun-of='{doomed.pk}']:has-text('A re-run of')")
    page.goto(f"{live_server.url}/sessions/{doomed.pk}/")
    page.wait_for_selector("text=Run again as:")


def test_a_template_fanned_out_over_three_repositories_drains_through_the_queue(
    page, live_server, cast, capped_simulator, eager_celery, screenshot
):
    """The issue's walk: a template with a variable, run across three repositories of an
    account that allows two sessions at once; the third waits in the queue and starts once
    Jules has room."""
    sim = capped_simulator
    cast.team.require_plan_approval = False
    cast.team.save()
    connection = ConnectionFactory(
        team=cast.team, label="Acme Jules", base_url=sim.base_url, api_key="test-key"
    )
    sync.sync_connection(connection.pk)
    repos = list(Source.objects.filter(connection=connection).order_by("name")[:3])
    assert len(repos) == 3
    sign_in(page, live_server, "member")

    page.click("nav >> text=Templates")
    page.click("text=New template")
    page.fill("#id_name", "Tidy the docs")
    page.fill("#id_prompt", "Tidy the {{ area }} docs of {{ repo }}")
    page.fill("#id_title_pattern", "{{ repo }}: {{ area }}")
    page.select_option("#id_repositories", [s.name for s in repos])
    # No plan to approve, so that Jules finishes them when its clock moves.
    page.uncheck("#id_require_plan_approval")
    page.click("button:has-text('Save template')")
    page.wait_for_selector("h1:has-text('Tidy the docs')")
    page.click("text=Run across repositories")
    page.fill("#id_var_area", "setup")
    page.click("button:has-text('Launch one per repository')")
    page.wait_for_selector(".toast >> text=Launched 3 sessions")

    # Two start; Jules refuses the third, the queue learns the cap and holds it.
    wait_until(lambda: Session.objects.count() == 2)
    page.goto(f"{live_server.url}/teams/{cast.team.slug}/queue/")
    assert page.locator("#queue tbody tr[id^=queued-]").count() == 1
    screenshot("template-fan-out-queued")

    sim.advance(3000)
    for session in Session.objects.all():
        sync.sync_one_session(session.pk)
    _tick()
    wait_until(lambda: Session.objects.count() == 3)
    page.wait_for_selector("[data-queue-empty]", timeout=15_000)
    prompts = sorted(Session.objects.values_list("prompt", flat=True))
    assert prompts == sorted(f"Tidy the setup docs of {s.full_name}" for s in repos)
    [account] = sim.quotas().values()
    assert account["peak_busy"] <= 2
