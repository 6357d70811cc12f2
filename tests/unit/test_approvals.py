"""The approvals inbox, the approve endpoint and its fragments, and one approval per plan."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from jules.client import JulesClient
from sessions_app import sync
from sessions_app.models import AuditEntry, Membership, OutboxAction
from sessions_app.outbox import delivery as actions
from sessions_app.sessions import services
from tests.factories import ActivityFactory, ConnectionFactory, SessionFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def _waiting(connection, title, *, hours_ago, launched_by=None, steps=("Read", "Write")):
    session = SessionFactory(
        connection=connection,
        title=title,
        state="AWAITING_PLAN_APPROVAL",
        launched_by=launched_by,
        create_time=timezone.now() - dt.timedelta(hours=hours_ago),
    )
    ActivityFactory(
        session=session,
        kind="planGenerated",
        plan_id=f"{session.pk:032x}",
        plan_steps=[{"title": step} for step in steps],
        create_time=session.create_time + dt.timedelta(minutes=1),
    )
    return session


@pytest.fixture
def inbox(cast):
    connection = ConnectionFactory(team=cast.team)
    newer = _waiting(connection, "Newer plan", hours_ago=1, launched_by=cast.member)
    older = _waiting(
        connection, "Older plan", hours_ago=5, launched_by=cast.approver, steps=("Old step",)
    )
    SessionFactory(connection=connection, title="Running already", state="IN_PROGRESS")
    # The approver is also an approver of another team, whose plans join the inbox.
    Membership.objects.create(team=cast.other_team, user=cast.approver, role="approver")
    foreign = _waiting(ConnectionFactory(team=cast.other_team), "Globex plan", hours_ago=3)
    return {"newer": newer, "older": older, "foreign": foreign}


def test_it_lists_approvable_plans_across_teams_oldest_first(client, cast, inbox):
    client.force_login(cast.approver)
    html = client.get(reverse("sessions_app:approvals")).content.decode()
    assert html.index("Older plan") < html.index("Globex plan") < html.index("Newer plan")
    assert "Running already" not in html
    assert "<li>Old step</li>" in html and "<li>Write</li>" in html


def test_it_puts_the_plan_that_waited_longest_first(client, cast, inbox):
    """A revised plan waits from when Jules generated it, not from the session's start."""
    older = inbox["older"]
    ActivityFactory(
        session=older,
        kind="planGenerated",
        plan_id="f" * 32,
        plan_steps=[{"title": "Revised step"}],
        create_time=timezone.now() - dt.timedelta(minutes=5),
    )
    client.force_login(cast.approver)
    html = client.get(reverse("sessions_app:approvals")).content.decode()
    assert html.index("Globex plan") < html.index("Newer plan") < html.index("Older plan")
    assert "<li>Revised step</li>" in html and "<li>Old step</li>" not in html
    assert "plan waiting 5\xa0minutes" in html


def test_it_leaves_out_own_plans_when_the_policy_forbids_self_approval(client, cast, inbox):
    cast.team.forbid_self_approval = True
    cast.team.save()
    client.force_login(cast.approver)
    html = client.get(reverse("sessions_app:approvals")).content.decode()
    assert "Older plan" not in html and "Newer plan" in html


def test_it_shows_nothing_to_those_who_cannot_approve(client, cast, inbox):
    client.force_login(cast.member)
    html = client.get(reverse("sessions_app:approvals")).content.decode()
    assert "Nothing waits for your approval" in html and "Newer plan" not in html


def test_it_answers_the_inbox_with_the_updated_row(client, cast, inbox):
    client.force_login(cast.admin)
    session = inbox["newer"]
    response = client.post(
        reverse("sessions_app:session-approve", args=[session.pk]),
        HTTP_HX_TARGET=f"approval-row-{session.pk}",
        **HTMX,
    )
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert html.lstrip().startswith(f'<li id="approval-row-{session.pk}"')
    assert "Approval pending delivery (by admin at" in html
    assert "Approve plan</button>" not in html


def test_it_answers_the_session_page_with_the_approval_fragment(client, cast, inbox):
    client.force_login(cast.approver)
    session = inbox["newer"]
    url = reverse("sessions_app:session-approve", args=[session.pk])
    response = client.post(url, HTTP_HX_TARGET=f"approval-{session.pk}", **HTMX)
    html = response.content.decode()
    assert html.lstrip().startswith(f'<div id="approval-{session.pk}"')
    action = OutboxAction.objects.get(kind="approve")
    OutboxAction.objects.filter(pk=action.pk).update(status="done")
    again = client.post(url, HTTP_HX_TARGET=f"approval-{session.pk}", **HTMX).content.decode()
    assert "Approved by approver at" in again
    assert OutboxAction.objects.filter(kind="approve").count() == 1


def test_it_shows_why_an_approval_is_refused(client, cast, inbox):
    client.force_login(cast.member)
    session = inbox["newer"]
    response = client.post(
        reverse("sessions_app:session-approve", args=[session.pk]),
        HTTP_HX_TARGET=f"approval-{session.pk}",
        **HTMX,
    )
    html = response.content.decode()
    assert "Only an approver or an admin of the team may approve plans." in html
    assert not OutboxAction.objects.exists()


def test_it_redirects_without_htmx_to_a_safe_next(client, cast, inbox):
    client.force_login(cast.approver)
    session = inbox["newer"]
    url = reverse("sessions_app:session-approve", args=[session.pk])
    response = client.post(url, {"next": reverse("sessions_app:approvals")})
    assert response["Location"] == reverse("sessions_app:approvals")
    response = client.post(url, {"next": "https://evil.example/"})
    assert response["Location"] == reverse("sessions_app:session-detail", args=[session.pk])


def test_it_offers_the_button_again_after_a_failed_delivery(client, cast, inbox):
    session = inbox["newer"]
    action = services.session_approve_plan(user=cast.approver, session=session)
    OutboxAction.objects.filter(pk=action.pk).update(
        status="failed", last_error="Jules refused: not awaiting approval."
    )
    client.force_login(cast.approver)
    html = client.get(reverse("sessions_app:approvals")).content.decode()
    assert "The last approval was not delivered: Jules refused" in html
    assert "Approve plan</button>" in html


def test_it_approves_once_when_two_people_click_together(cast, simulator):
    """One outbox row, one audit entry and one call to Jules for one plan."""
    connection = ConnectionFactory(team=cast.team, base_url=simulator.base_url, api_key="test-key")
    remote = JulesClient("test-key", simulator.base_url).create_session(
        prompt="Twice?", require_plan_approval=True
    )
    simulator.advance(70)
    session = sync.upsert_remote_session(connection, remote)
    sync.sync_one_session(session.pk)
    session.refresh_from_db()
    assert session.state == "AWAITING_PLAN_APPROVAL"
    first = services.session_approve_plan(user=cast.approver, session=session)
    second = services.session_approve_plan(user=cast.admin, session=session)
    assert first.pk == second.pk
    # Both clicks enqueued a delivery of the same action; the claim lets one through.
    assert actions.deliver(str(first.pk)) == "done"
    assert actions.deliver(str(second.pk)) == "done"
    assert OutboxAction.objects.filter(kind="approve").count() == 1
    assert AuditEntry.objects.filter(action="session.approve").count() == 1
    assert simulator.request_counts()["sessions.approvePlan"] == 1


def test_it_escapes_agent_and_user_text_in_the_inbox(client, cast):
    connection = ConnectionFactory(team=cast.team)
    session = _waiting(
        connection,
        "<img src=x onerror=alert(1)>",
        hours_ago=1,
        steps=("<script>alert('step')</script>",),
    )
    session.prompt = "<script>alert('prompt')</script>"
    session.save()
    client.force_login(cast.approver)
    html = client.get(reverse("sessions_app:approvals")).content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#x27;step&#x27;)&lt;/script&gt;" in html


# --- the live inbox and the header's count ----------------------------------------------

INBOX_POLL = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "approvals"}


@pytest.fixture(autouse=True)
def _no_count_from_another_test():
    # The header's count is cached by user id, and ids repeat from one test to the next.
    from django.core.cache import cache

    cache.clear()


def _inbox_poll_url(html: str) -> str:
    import re

    found = re.search(r'id="approvals"[^>]*hx-get="([^"]+)" hx-trigger="every 5s"', html)
    assert found, "the inbox does not poll"
    return found.group(1)


def test_it_updates_the_inbox_by_itself_and_answers_204_while_unchanged(client, cast, inbox):
    client.force_login(cast.approver)
    html = client.get(reverse("sessions_app:approvals")).content.decode()
    url = _inbox_poll_url(html)
    assert client.get(url, **INBOX_POLL).status_code == 204
    _waiting(ConnectionFactory(team=cast.team), "Brand new plan", hours_ago=0)
    response = client.get(url, **INBOX_POLL)
    fresh = response.content.decode()
    assert response.status_code == 200 and "<html" not in fresh
    assert "Brand new plan" in fresh and _inbox_poll_url(fresh) != url
    # The header's count comes along, out of band.
    assert '<span id="nav-approvals-count" class="nav-count" hx-swap-oob="true">4<' in fresh


def test_it_does_not_poll_the_inbox_of_someone_who_approves_nowhere(client, cast, inbox):
    client.force_login(cast.member)
    html = client.get(reverse("sessions_app:approvals")).content.decode()
    assert "every 5s" not in html


def test_the_header_counts_the_plans_waiting_for_the_user(client, cast, inbox):
    client.force_login(cast.approver)
    html = client.get(reverse("sessions_app:session-list")).content.decode()
    # Newer plan and Globex plan; the approver's own one is theirs to approve too here.
    assert '<span id="nav-approvals-count" class="nav-count">3<' in html
    client.force_login(cast.member)
    html = client.get(reverse("sessions_app:session-list")).content.decode()
    assert '<span id="nav-approvals-count" class="nav-count" hidden>0<' in html


def test_the_header_count_follows_the_users_own_approval_at_once(client, cast, inbox, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    client.force_login(cast.approver)
    client.get(reverse("sessions_app:session-list"))
    client.post(reverse("sessions_app:session-approve", args=[inbox["newer"].pk]))
    inbox["newer"].refresh_from_db()
    # The plan still waits on Jules until the sync sees the approval; the count is read
    # again rather than kept from before.
    from django.core.cache import cache

    assert cache.get(f"nav:approvals-waiting:{cast.approver.pk}") is None
