"""The session page: header, plan, timeline, outputs, live fragments, actions, permissions."""

from __future__ import annotations

import base64
import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from jules.client import JulesClient
from sessions_app import sync
from sessions_app.models import OutboxAction, SessionOutput
from sessions_app.sessions import services
from tests.factories import ActivityFactory, ConnectionFactory, SessionFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
PATCH = """\
diff --git a/billing/round.py b/billing/round.py
index 1111111..2222222 100644
--- a/billing/round.py
+++ b/billing/round.py
@@ -1,2 +1,3 @@
 import math
-x = 1
+x = 2
+y = "<b>"
"""
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 8).decode()
T0 = timezone.now() - dt.timedelta(hours=2)


def _at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def _url(name: str, *args: object) -> str:
    return reverse(f"sessions_app:{name}", args=args)


@pytest.fixture
def conn(cast):
    return ConnectionFactory(team=cast.team, label="Main account")


def _plan(session, minutes=1, titles=("Read the rounding code.", "Write the tests.", "Run them.")):
    steps = [{"id": f"{i:032x}", "title": t, "index": i} for i, t in enumerate(titles)]
    return ActivityFactory(
        session=session,
        kind="planGenerated",
        plan_id="p" * 32,
        plan_steps=steps,
        description="Plan generated",
        create_time=_at(minutes),
    )


def _progress(session, minutes, title="", description=""):
    return ActivityFactory(
        session=session,
        kind="progressUpdated",
        progress_title=title,
        progress_description=description,
        message="",
        create_time=_at(minutes),
    )


@pytest.fixture
def live(cast, conn):
    session = SessionFactory(
        connection=conn,
        title="Invoice rounding tests",
        prompt="Add unit tests for **invoice** rounding",
        state="IN_PROGRESS",
        starting_branch="main",
        working_branch="jules/rounding",
        launched_by=cast.member,
        create_time=_at(0),
    )
    _plan(session)
    ActivityFactory(
        session=session, kind="planApproved", originator="user", message="", create_time=_at(2)
    )
    return session


@pytest.fixture
def done(cast, conn):
    session = SessionFactory(
        connection=conn,
        title="Finished work",
        state="COMPLETED",
        pr_url="https://github.com/acme/billing/pull/412",
        create_time=_at(0),
    )
    SessionOutput.objects.create(
        session=session,
        position=0,
        kind="changeSet",
        patch=PATCH,
        suggested_commit_message="test: cover invoice rounding",
    )
    SessionOutput.objects.create(
        session=session,
        position=1,
        kind="pullRequest",
        url="https://github.com/acme/billing/pull/412",
        title="Invoice rounding tests",
        description="Adds *tests*.",
        base_ref="main",
        head_ref="jules/rounding",
    )
    ActivityFactory(
        session=session,
        kind="sessionCompleted",
        message="",
        create_time=_at(30),
        artifacts=[{"kind": "changeSet", "patch": PATCH, "suggested_commit_message": "msg"}],
    )
    return session


# --- the page -------------------------------------------------------------------------


def test_it_shows_the_header(client, cast, live):
    client.force_login(cast.viewer)
    html = client.get(_url("session-detail", live.pk)).content.decode()
    assert '<h1 id="session-title">Invoice rounding tests</h1>' in html
    assert "In progress" in html
    assert "acme/billing from <code>main</code> onto <code>jules/rounding</code>" in html
    assert "<dt>Connection</dt><dd>Main account (Acme)</dd>" in html
    assert "<dt>Launched by</dt><dd>member</dd>" in html
    assert f'href="https://jules.google.com/session/{live.remote_id}"' in html
    # The prompt is shown as text, not markdown.
    assert "Add unit tests for **invoice** rounding" in html


def test_it_links_the_pull_request_and_shows_the_outputs(client, cast, done):
    client.force_login(cast.viewer)
    html = client.get(_url("session-detail", done.pk)).content.decode()
    assert html.count('href="https://github.com/acme/billing/pull/412"') == 2
    assert "into <code>main</code> from <code>jules/rounding</code>" in html
    assert "<em>tests</em>" in html
    assert "test: cover invoice rounding" in html
    assert (
        '1 file changed, <span class="added">+2</span> <span class="removed">\u22121</span>' in html
    )
    output = done.outputs.get(kind="changeSet")
    assert f'href="/sessions/{done.pk}/patch/{output.pk}.diff"' in html


def test_it_draws_the_diff_with_line_numbers_and_colours(client, cast, done):
    client.force_login(cast.viewer)
    html = client.get(_url("session-detail", done.pk)).content.decode()
    rows = re.findall(
        r'<tr class="diff-(\w+)"><td class="ln">(\d*)</td><td class="ln">(\d*)</td>', html
    )
    assert rows[:4] == [("ctx", "1", "1"), ("del", "2", ""), ("add", "", "2"), ("add", "", "3")]
    assert '<span class="hl-s2">&quot;&lt;b&gt;&quot;</span>' in html
    assert "style=" not in html.split('class="diff-viewer"')[1]
    # The same change set in the timeline is summarised, not drawn twice.
    assert html.count('class="diff-viewer"') == 1
    assert "the session's changes, shown under Changes" in html


def test_it_numbers_the_plan_and_follows_the_current_step(client, cast, live):
    _progress(live, 3, "Reading billing/round.py")
    _progress(live, 4, "Ran bash command", "Command: pytest")
    _progress(live, 5, "Writing tests for rounding")
    client.force_login(cast.viewer)
    html = client.get(_url("session-detail", live.pk)).content.decode()
    plan = html.split('id="plan-heading"')[1].split("</section>")[0]
    steps = re.findall(r'<li class="step-(\w+)"', plan)
    # Two titled updates after the approval: the agent is on step 2 (bash runs do not count).
    assert steps == ["done", "current", "todo"]
    assert 'aria-current="step"' in plan and "Write the tests." in plan


def test_it_prefers_a_progress_title_that_names_a_step(cast, live):
    from sessions_app.sessions.timeline import plan_view_for

    _progress(live, 3, "Started: Run them")
    _progress(live, 4, "Looking around")
    view = plan_view_for(live)
    assert view is not None and view.current == 2
    assert [s.status for s in view.steps] == ["done", "done", "current"]


def test_it_marks_no_step_before_the_approval_and_every_step_once_completed(cast, conn):
    from sessions_app.sessions.timeline import plan_view_for

    waiting = SessionFactory(connection=conn, state="AWAITING_PLAN_APPROVAL")
    _plan(waiting)
    view = plan_view_for(waiting)
    assert view is not None and view.current is None and not view.approved
    assert {s.status for s in view.steps} == {"todo"}
    finished = SessionFactory(connection=conn, state="COMPLETED")
    _plan(finished)
    ActivityFactory(session=finished, kind="planApproved", create_time=_at(2))
    assert {s.status for s in plan_view_for(finished).steps} == {"done"}
    failed = SessionFactory(connection=conn, state="FAILED")
    _plan(failed)
    ActivityFactory(session=failed, kind="planApproved", create_time=_at(2))
    _progress(failed, 3, "Reading")
    assert [s.status for s in plan_view_for(failed).steps] == ["failed", "todo", "todo"]


def test_it_shows_the_latest_plan_when_revised(cast, live):
    from sessions_app.sessions.timeline import plan_view_for

    _plan(live, minutes=10, titles=("A whole new first step.",))
    view = plan_view_for(live)
    assert [s.title for s in view.steps] == ["A whole new first step."]
    assert view.current is None  # The revision is not approved yet.


def test_it_renders_every_kind_of_activity(client, cast, live):
    ActivityFactory(session=live, kind="agentMessaged", message="Shall I use **Decimal**?")
    ActivityFactory(session=live, kind="userMessaged", originator="user", message="Yes, `Decimal`.")
    _progress(live, 20, "Ran bash command", "Command: pytest")
    ActivityFactory(
        session=live,
        kind="progressUpdated",
        progress_title="Ran bash command",
        message="",
        artifacts=[
            {"kind": "bashOutput", "command": "pytest -q", "output": "1 failed", "exit_code": 1}
        ],
    )
    ActivityFactory(
        session=live,
        kind="progressUpdated",
        progress_title="Frontend verification",
        message="",
        artifacts=[
            {"kind": "media", "mime_type": "image/png", "data": PNG},
            {"kind": "media", "mime_type": "image/svg+xml", "data": PNG},
        ],
    )
    ActivityFactory(
        session=live,
        kind="unknown",
        message="",
        description="Searched the code",
        artifacts=[{"kind": "unknown", "raw": {"hologram": {"frames": 3}}}],
    )
    ActivityFactory(session=live, kind="unknown", message="", description="")
    ActivityFactory(session=live, kind="sessionFailed", message="", failure_reason="No space left")
    client.force_login(cast.viewer)
    html = client.get(_url("session-detail", live.pk)).content.decode()
    assert "Shall I use <strong>Decimal</strong>?" in html
    assert "Yes, <code>Decimal</code>." in html
    assert "Plan generated</strong> with 3 steps" in html and "Plan approved." in html
    assert (
        '<summary><code>$ pytest -q</code> <span class="badge state-FAILED">exit 1</span></summary>'
        in html
    )
    assert f'src="data:image/png;base64,{PNG}"' in html
    assert "image/svg+xml" in html and "data:image/svg" not in html
    assert "Searched the code" in html and "(hologram)" in html
    assert "An event the portal does not know yet." in html
    assert "Session failed:</strong> No space left" in html


def test_it_renders_agent_text_inert(client, cast, live):
    ActivityFactory(
        session=live,
        kind="agentMessaged",
        message="<script>alert(1)</script> [x](javascript:alert(2)) <img src=x onerror=alert(3)>",
    )
    _progress(live, 30, "<b>bold</b>", "<script>alert(4)</script>")
    client.force_login(cast.viewer)
    html = client.get(_url("session-detail", live.pk)).content.decode()
    for payload in ("<script>alert", "javascript:", "<img src=x", "<b>bold</b>"):
        assert payload not in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "&lt;script&gt;alert(4)" in html
    # What the agent wrote stays readable, as text.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(3)&gt;" in html


def test_it_loads_the_history_lazily(client, cast, live):
    client.force_login(cast.viewer)
    html = client.get(_url("session-detail", live.pk)).content.decode()
    assert (
        f'hx-get="/sessions/{live.pk}/history/" hx-trigger="toggle once from:closest details"'
        in html
    )


def test_it_warns_when_the_connection_is_broken(client, cast, live, conn):
    conn.sync_status = "broken"
    conn.last_error = "Jules did not accept the API key."
    conn.save()
    client.force_login(cast.viewer)
    html = client.get(_url("session-detail", live.pk)).content.decode()
    assert "is broken:</strong> Jules did not accept the API key." in html
    assert "Invoice rounding tests" in html


# --- live fragments -------------------------------------------------------------------


def test_it_polls_once_while_the_session_can_change(client, cast, live):
    client.force_login(cast.viewer)
    html = client.get(_url("session-detail", live.pk)).content.decode()
    assert html.count('hx-trigger="every 3s"') == 1
    poller = html.split(f'id="session-{live.pk}-live"')[1].split(">")[0]
    assert f'hx-get="/sessions/{live.pk}/live/"' in poller and 'hx-swap="none"' in poller
    assert (
        f'hx-include="#session-{live.pk}-header-digest, #session-{live.pk}-after, '
        f'#session-{live.pk}-pending-digest"'
    ) in poller
    header = html.split(f'id="session-{live.pk}-header"')[1].split(">")[0]
    assert "hx-get" not in header
    last = live.activities.order_by("-id").first()
    assert _state(html)["after"] == str(last.pk)


def _state(html: str, state: dict[str, str] | None = None) -> dict[str, str]:
    """What the poll sends (the fields its hx-include names), as the page (or the parts
    an answer swapped into it) holds them."""
    state = dict(state or {})
    for name, field in (("v", "header-digest"), ("after", "after"), ("p", "pending-digest")):
        found = re.search(rf'name="{name}" value="(\w+)" id="session-\d+-{field}"', html)
        if found:
            state[name] = found.group(1)
    return state


def test_it_answers_204_while_nothing_has_changed(client, cast, live):
    client.force_login(cast.viewer)
    state = _state(client.get(_url("session-detail", live.pk)).content.decode())
    assert set(state) == {"v", "after", "p"}
    url = _url("session-live", live.pk)
    assert client.get(url, state, **HTMX).status_code == 204
    live.state = "AWAITING_USER_FEEDBACK"
    live.save()
    changed = client.get(url, state, **HTMX)
    html = changed.content.decode()
    assert changed.status_code == 200 and "Awaiting feedback" in html
    assert f'id="session-{live.pk}-header-box" hx-swap-oob="innerHTML"' in html
    # Only the header changed: no activities, no pending list, no outputs.
    assert "activity-" not in html and f'id="session-{live.pk}-pending"' not in html
    assert f'id="session-{live.pk}-outputs"' not in html
    assert client.get(url, _state(html, state), **HTMX).status_code == 204


def test_it_moves_the_plan_with_the_header(client, cast, live):
    client.force_login(cast.viewer)
    state = _state(client.get(_url("session-detail", live.pk)).content.decode())
    _progress(live, 3, "Reading")
    _progress(live, 4, "Writing")
    response = client.get(_url("session-live", live.pk), state, **HTMX).content.decode()
    assert re.findall(r'<li class="step-(\w+)"', response) == ["done", "current", "todo"]
    assert f'id="session-{live.pk}-plan"' in response


def test_it_sends_the_pending_list_only_when_it_changed(client, cast, live, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    client.force_login(cast.member)
    state = _state(client.get(_url("session-detail", live.pk)).content.decode())
    url = _url("session-live", live.pk)
    pending = f'id="session-{live.pk}-pending" hx-swap-oob="innerHTML"'
    assert client.get(url, state, **HTMX).status_code == 204
    client.post(_url("session-message", live.pk), {"prompt": "Carry on"}, **HTMX)
    response = client.get(url, state, **HTMX).content.decode()
    assert pending in response and "Carry on" in response


def test_it_clears_a_sent_message_that_was_recorded_before_the_next_poll(
    client, cast, live, settings
):
    """The composer's answer replaces the pending list, and its digest with it: when the
    message is recorded before the next poll, the list goes back to empty, which is what
    the page showed before; the poll must still see that the browser shows the message."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    client.force_login(cast.member)
    state = _state(client.get(_url("session-detail", live.pk)).content.decode())
    answer = client.post(_url("session-message", live.pk), {"prompt": "Carry on"}, **HTMX)
    shown = answer.content.decode()
    assert "Carry on" in shown
    OutboxAction.objects.filter(kind="message").update(status="done", delivered_at=timezone.now())
    ActivityFactory(session=live, kind="userMessaged", originator="user", message="Carry on")
    response = client.get(_url("session-live", live.pk), _state(shown, state), **HTMX)
    pending = response.content.decode().split(
        f'id="session-{live.pk}-pending" hx-swap-oob="innerHTML">'
    )
    assert len(pending) == 2, "the poll left the stale pending message on the page"
    assert "Carry on" not in pending[1]


@pytest.mark.parametrize("state", ["COMPLETED", "FAILED"])
def test_it_does_not_poll_a_finished_session(client, cast, conn, state):
    session = SessionFactory(connection=conn, state=state)
    client.force_login(cast.viewer)
    html = client.get(_url("session-detail", session.pk)).content.decode()
    assert "every 3s" not in html and f'id="session-{session.pk}-live"' not in html
    poll = client.get(_url("session-live", session.pk), _state(html), **HTMX)
    assert poll.status_code == 286 and "hx-trigger" not in poll.content.decode()
    # The answer takes the poller off the page, so it says that updates stopped.
    assert f'<div id="session-{session.pk}-live" hidden hx-swap-oob="true"></div>' in (
        poll.content.decode()
    )


def test_it_answers_a_changed_header_with_the_header_and_the_plan(client, cast, live):
    client.force_login(cast.viewer)
    response = client.get(_url("session-live", live.pk), {"v": "stale"}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    box = rf'<div id="session-{live.pk}-header-box" hx-swap-oob="innerHTML">\s*<header id='
    assert re.match(box + f'"session-{live.pk}-header"', html.strip())
    assert f'<section id="session-{live.pk}-plan" class="card plan-card"' in html
    assert f'id="session-{live.pk}-plan"' in html and 'hx-swap-oob="true"' in html


def test_it_appends_only_new_activities(client, cast, live):
    client.force_login(cast.viewer)
    state = _state(client.get(_url("session-detail", live.pk)).content.decode())
    last = live.activities.order_by("-id").first()
    url = _url("session-live", live.pk)
    assert client.get(url, state, **HTMX).status_code == 204
    new = ActivityFactory(session=live, kind="agentMessaged", message="Fresh news")
    html = client.get(url, state, **HTMX).content.decode()
    assert f'id="activity-{new.pk}"' in html and f'id="activity-{last.pk}"' not in html
    assert '<ol hx-swap-oob="beforeend:#timeline">' in html
    assert _state(html) == {"after": str(new.pk)}
    assert f'id="session-{live.pk}-outputs"' in html
    assert client.get(url, _state(html, state), **HTMX).status_code == 204


def test_it_delivers_the_last_activities_of_a_session_that_just_ended(client, cast, live):
    client.force_login(cast.viewer)
    state = _state(client.get(_url("session-detail", live.pk)).content.decode())
    ActivityFactory(session=live, kind="sessionCompleted", message="")
    live.state = "COMPLETED"
    live.save()
    response = client.get(_url("session-live", live.pk), state, **HTMX)
    html = response.content.decode()
    assert response.status_code == 286 and "Session completed." in html
    assert "Completed" in html.split("header-box")[1]


@pytest.mark.parametrize("after", ["x", "-1", "1.5", "9" * 30])
def test_it_refuses_a_bad_after(client, cast, live, after):
    client.force_login(cast.viewer)
    response = client.get(_url("session-live", live.pk), {"after": after}, **HTMX)
    assert response.status_code == 400
    assert "`after` must be an activity id." in response.content.decode()


def test_it_hides_the_poll_from_outsiders(client, cast, live):
    client.force_login(cast.outsider)
    assert client.get(_url("session-live", live.pk), **HTMX).status_code == 404


def test_it_sends_the_poll_opened_directly_to_the_page(client, cast, live):
    client.force_login(cast.viewer)
    response = client.get(_url("session-live", live.pk))
    assert response.status_code == 302 and response["Location"] == f"/sessions/{live.pk}/"


def test_it_polls_cheaply(client, cast, live, django_assert_max_num_queries):
    for n in range(30):
        _progress(live, 10 + n, f"Step {n}")
    client.force_login(cast.viewer)
    state = _state(client.get(_url("session-detail", live.pk)).content.decode())
    with django_assert_max_num_queries(14):
        assert client.get(_url("session-live", live.pk), state, **HTMX).status_code == 204
    ActivityFactory(session=live, kind="agentMessaged", message="Fresh news")
    with django_assert_max_num_queries(15):
        assert client.get(_url("session-live", live.pk), state, **HTMX).status_code == 200


# --- pending actions and the composer -------------------------------------------------


def test_it_shows_a_sent_message_at_once_as_pending(client, cast, live, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    client.force_login(cast.member)
    response = client.post(_url("session-message", live.pk), {"prompt": "Use *Decimal*"}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.strip().startswith('<div class="activity pending from-user"')
    assert "Use *Decimal*" in html and "pending" in html
    action = OutboxAction.objects.get(kind="message")
    assert action.payload == {"prompt": "Use *Decimal*"} and action.actor == cast.member


def test_it_follows_a_message_from_pending_to_the_timeline(client, cast, live):
    action = OutboxAction.objects.create(
        team=cast.team,
        connection=live.connection,
        session=live,
        actor=cast.member,
        kind="message",
        payload={"prompt": "Round toward zero"},
    )
    client.force_login(cast.viewer)
    url = _url("session-detail", live.pk)
    assert "Round toward zero" in client.get(url).content.decode().split("pending-list")[1]
    OutboxAction.objects.filter(pk=action.pk).update(
        status="failed", last_error="Jules refused: Session is not active."
    )
    assert (
        "not delivered: Jules refused: Session is not active." in client.get(url).content.decode()
    )
    OutboxAction.objects.filter(pk=action.pk).update(status="done", delivered_at=timezone.now())
    assert "delivered; waiting for Jules to record it" in client.get(url).content.decode()
    ActivityFactory(
        session=live, kind="userMessaged", originator="user", message="Round toward zero"
    )
    html = client.get(url).content.decode()
    assert f'id="pending-{action.pk}"' not in html
    assert "<p>Round toward zero</p>" in html


def test_it_explains_why_the_composer_is_disabled(client, cast, live, conn):
    client.force_login(cast.viewer)
    html = client.get(_url("session-detail", live.pk)).content.decode()
    assert 'disabled aria-describedby="composer-why"' in html
    assert "Viewers cannot message the agent" in html
    failed = SessionFactory(connection=conn, state="FAILED")
    client.force_login(cast.member)
    html = client.get(_url("session-detail", failed.pk)).content.decode()
    assert "A failed session does not take messages." in html
    html = client.get(_url("session-detail", live.pk)).content.decode()
    assert "data-submit-on-ctrl-enter" in html and 'aria-describedby="composer-help"' in html
    assert '<p id="composer-why" class="muted" hidden>' in html


def test_it_tells_the_page_when_the_session_stops_taking_messages(client, cast, live):
    client.force_login(cast.member)
    html = client.get(_url("session-detail", live.pk)).content.decode()
    assert 'data-can-message="yes"' in html
    live.state = "FAILED"
    live.save()
    header = client.get(_url("session-live", live.pk), **HTMX).content.decode()
    assert 'data-can-message="no"' in header
    assert 'data-message-reason="A failed session does not take messages."' in header


def test_it_refuses_a_message_the_service_refuses(client, cast, live):
    client.force_login(cast.viewer)
    response = client.post(_url("session-message", live.pk), {"prompt": "hi"}, **HTMX)
    assert response.status_code == 422
    assert "messages" in response["HX-Trigger"]
    assert not OutboxAction.objects.exists()
    client.force_login(cast.member)
    response = client.post(_url("session-message", live.pk), {"prompt": "  "})
    assert response.status_code == 302 and not OutboxAction.objects.exists()


def test_it_shows_a_failed_action_with_its_reason(client, cast, live):
    OutboxAction.objects.create(
        team=cast.team,
        connection=live.connection,
        session=live,
        actor=cast.approver,
        kind="archive",
        status="failed",
        last_error="Jules no longer knows this session (was it deleted?).",
    )
    client.force_login(cast.viewer)
    html = client.get(_url("session-detail", live.pk)).content.decode()
    assert "Archive by approver failed: Jules no longer knows this session" in html


# --- approval, archive, delete --------------------------------------------------------


@pytest.fixture
def waiting(cast, conn):
    session = SessionFactory(
        connection=conn, state="AWAITING_PLAN_APPROVAL", launched_by=cast.member
    )
    _plan(session)
    return session


def test_it_offers_the_approval_with_a_confirmation(client, cast, waiting):
    client.force_login(cast.approver)
    html = client.get(_url("session-detail", waiting.pk)).content.decode()
    assert f'hx-post="/sessions/{waiting.pk}/approve/"' in html
    assert 'hx-confirm="Approve this plan?' in html
    assert f'hx-target="#approval-{waiting.pk}"' in html


def test_it_explains_why_a_member_cannot_approve(client, cast, waiting):
    client.force_login(cast.member)
    html = client.get(_url("session-detail", waiting.pk)).content.decode()
    assert "Approve plan</button>" not in html
    assert "Only an approver or an admin of the team may approve plans." in html


def test_it_shows_the_recorded_approval_after_approving(client, cast, waiting, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    services.session_approve_plan(user=cast.approver, session=waiting)
    client.force_login(cast.viewer)
    html = client.get(_url("session-live", waiting.pk), **HTMX).content.decode()
    assert "Approval pending delivery (by approver" in html
    assert "Approve plan</button>" not in html


def test_it_archives_and_unarchives_in_place(client, cast, live):
    client.force_login(cast.member)
    response = client.post(_url("session-archive", live.pk), **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and '<span class="badge archived">Archived</span>' in html
    assert 'name="undo"' in html
    live.refresh_from_db()
    assert live.archived
    client.post(_url("session-archive", live.pk), {"undo": "1"}, **HTMX)
    live.refresh_from_db()
    assert not live.archived
    assert OutboxAction.objects.filter(kind__in=["archive", "unarchive"]).count() == 2


def test_it_shows_archive_and_delete_only_to_those_allowed(client, cast, live, conn):
    archive = f'action="/sessions/{live.pk}/archive/"'
    delete = f'action="/sessions/{live.pk}/delete/"'
    expected = {
        "viewer": (False, False),
        "member": (True, False),  # The member launched this one.
        "approver": (False, False),  # Approvers too archive only their own.
        "admin": (True, True),
    }
    for role, (can_archive, can_delete) in expected.items():
        client.force_login(getattr(cast, role))
        html = client.get(_url("session-detail", live.pk)).content.decode()
        assert (archive in html, delete in html) == (can_archive, can_delete), role
    other = SessionFactory(connection=conn, state="IN_PROGRESS", launched_by=cast.admin)
    client.force_login(cast.member)
    html = client.get(_url("session-detail", other.pk)).content.decode()
    assert f'action="/sessions/{other.pk}/archive/"' not in html


def test_it_deletes_after_a_confirmation_that_names_jules(client, cast, live):
    client.force_login(cast.admin)
    html = client.get(_url("session-detail", live.pk)).content.decode()
    assert "It is deleted on Jules too" in html
    response = client.post(_url("session-delete", live.pk), **HTMX)
    assert response.status_code == 200 and response["HX-Redirect"] == "/sessions/"
    assert OutboxAction.objects.filter(kind="delete", session=live).exists()
    client.force_login(cast.member)
    response = client.post(_url("session-delete", live.pk))
    assert response.status_code == 302 and response["Location"] == f"/sessions/{live.pk}/"
    assert OutboxAction.objects.filter(kind="delete").count() == 1


# --- patch download -------------------------------------------------------------------


def test_it_downloads_the_patch_of_an_output_and_of_an_activity(client, cast, done):
    client.force_login(cast.viewer)
    output = done.outputs.get(kind="changeSet")
    response = client.get(_url("session-patch", done.pk, output.pk))
    assert response.status_code == 200 and response.content.decode() == PATCH
    assert response["Content-Type"].startswith("text/x-diff")
    assert response["Content-Disposition"].startswith("attachment; filename=")
    activity = done.activities.get(kind="sessionCompleted")
    response = client.get(_url("session-activity-patch", done.pk, activity.pk))
    assert response.status_code == 200 and response.content.decode() == PATCH
    pr = done.outputs.get(kind="pullRequest")
    assert client.get(_url("session-patch", done.pk, pr.pk)).status_code == 404


def test_it_serves_patches_only_of_the_session_named(client, cast, done, live):
    client.force_login(cast.viewer)
    output = done.outputs.get(kind="changeSet")
    assert client.get(_url("session-patch", live.pk, output.pk)).status_code == 404
    plan = live.activities.get(kind="planGenerated")
    assert client.get(_url("session-activity-patch", live.pk, plan.pk)).status_code == 404


# --- outsiders ------------------------------------------------------------------------


def test_it_answers_404_to_outsiders_everywhere(client, cast, done):
    client.force_login(cast.outsider)
    output = done.outputs.get(kind="changeSet")
    activity = done.activities.first()
    gets = [
        _url("session-detail", done.pk),
        _url("session-live", done.pk) + "?after=0",
        "/sessions/live-rows?rows=" + f"{done.pk}:{'0' * 16}",
        _url("session-patch", done.pk, output.pk),
        _url("session-activity-patch", done.pk, activity.pk),
    ]
    for url in gets:
        assert client.get(url, **HTMX).status_code == 404, url
        assert client.get(url).status_code == 404, url
    for name in ("session-message", "session-archive", "session-delete"):
        assert client.post(_url(name, done.pk), {"prompt": "x"}).status_code == 404
    assert not OutboxAction.objects.exists()


# --- against the simulator ------------------------------------------------------------


def test_it_shows_what_the_simulator_plays(client, cast, simulator, sim_connection):
    remote = JulesClient("test-key", simulator.base_url).create_session(
        prompt="UI check [sim:happy bash media unknown]",
        source="sources/github/acme/billing",
        starting_branch="main",
    )
    simulator.advance(3000)
    session = sync.upsert_remote_session(sim_connection, remote)
    sync.sync_one_session(session.pk)
    session.refresh_from_db()
    assert session.state == "COMPLETED"
    client.force_login(cast.viewer)
    html = client.get(_url("session-detail", session.pk)).content.decode()
    assert "Searched the code" in html and "Environment ready" in html
    assert 'src="data:image/png;base64,' in html
    assert re.search(r"<summary><code>\$ [^<]+</code>", html)
    assert "Session completed." in html and 'class="diff-viewer"' in html
    assert "every 3s" not in html


def test_it_says_when_the_plan_is_a_revision(client, cast, live):
    client.force_login(cast.viewer)
    html = client.get(_url("session-detail", live.pk)).content.decode()
    assert "(revised)" not in html
    _plan(live, minutes=10, titles=("A revised step.",))
    html = client.get(_url("session-detail", live.pk)).content.decode()
    assert 'Plan <span class="muted">(revised)</span>' in html
    header = client.get(_url("session-live", live.pk), **HTMX).content.decode()
    assert 'Plan <span class="muted">(revised)</span>' in header


def test_it_keeps_repeated_messages_pending_until_each_is_recorded(client, cast, live):
    now = timezone.now()
    for minutes in (2, 1):
        OutboxAction.objects.create(
            team=cast.team,
            connection=live.connection,
            session=live,
            actor=cast.member,
            kind="message",
            payload={"prompt": "yes"},
            status="done",
            delivered_at=now - dt.timedelta(minutes=minutes),
        )
    ActivityFactory(session=live, kind="userMessaged", originator="user", message="yes")
    client.force_login(cast.viewer)
    html = client.get(_url("session-detail", live.pk)).content.decode()
    pending = html.split("pending-list")[1].split("</section>")[0]
    assert pending.count("delivered; waiting for Jules to record it") == 1


def _who(html: str, activity) -> str:
    found = re.search(
        rf'id="activity-{activity.pk}".*?<span class="who">([^<]*)</span>', html, re.S
    )
    assert found, activity
    return found.group(1)


def test_it_names_the_people_behind_replies_and_approvals(client, cast, live):
    approved = live.activities.get(kind="planApproved")
    approved.plan_id = "p" * 32
    approved.save()
    OutboxAction.objects.create(
        team=cast.team,
        connection=live.connection,
        session=live,
        actor=cast.approver,
        kind="approve",
        payload={"plan_id": "p" * 32},
        status="done",
        delivered_at=timezone.now(),
    )
    for actor in (cast.member, cast.admin):
        OutboxAction.objects.create(
            team=cast.team,
            connection=live.connection,
            session=live,
            actor=actor,
            kind="message",
            payload={"prompt": "Go on"},
            status="done",
            delivered_at=timezone.now(),
        )
    first, second = (
        ActivityFactory(
            session=live,
            kind="userMessaged",
            originator="user",
            message="Go on",
            create_time=_at(m),
        )
        for m in (5, 6)
    )
    outside = ActivityFactory(
        session=live, kind="userMessaged", originator="user", message="Typed on Jules"
    )
    client.force_login(cast.viewer)
    html = client.get(_url("session-detail", live.pk)).content.decode()
    assert _who(html, approved) == "approver"
    assert (_who(html, first), _who(html, second)) == ("member", "admin")
    assert _who(html, outside) == "User"
    # The poll names them too.
    poll = client.get(_url("session-live", live.pk), {"after": first.pk - 1}, **HTMX)
    assert _who(poll.content.decode(), second) == "admin"


# --- what the page says about the state it is in ----------------------------------------


def test_it_shows_a_failed_sessions_reason_in_the_header(client, cast, conn):
    session = SessionFactory(connection=conn, state="FAILED")
    ActivityFactory(session=session, kind="sessionFailed", failure_reason="No disk left")
    client.force_login(cast.viewer)
    html = client.get(_url("session-detail", session.pk)).content.decode()
    header = html.split(f'id="session-{session.pk}-header"')[1].split("</header>")[0]
    assert "<strong>Failed:</strong> No disk left" in header


def test_it_says_that_a_message_resumes_a_paused_session(client, cast, conn):
    session = SessionFactory(connection=conn, state="PAUSED")
    client.force_login(cast.member)
    html = client.get(_url("session-detail", session.pk)).content.decode()
    composer = html.split(f'id="session-{session.pk}-composer"')[1]
    assert "Jules paused this session. A message resumes it." in composer


def test_it_sets_the_agents_question_apart(client, cast, live):
    earlier = ActivityFactory(session=live, kind="agentMessaged", message="Starting.")
    question = ActivityFactory(session=live, kind="agentMessaged", message="Round up or down?")
    live.state = "AWAITING_USER_FEEDBACK"
    live.save()
    client.force_login(cast.viewer)
    html = client.get(_url("session-detail", live.pk)).content.decode()
    assert re.search(rf'id="activity-{question.pk}" class="[^"]* question"', html)
    assert not re.search(rf'id="activity-{earlier.pk}" class="[^"]* question"', html)
    assert "Jules asks" in html


def test_it_explains_why_a_timed_out_plan_can_still_be_approved(client, cast, conn):
    session = SessionFactory(connection=conn, state="COMPLETED")
    ActivityFactory(session=session, kind="planGenerated", plan_id="q" * 32, plan_steps=[])
    client.force_login(cast.approver)
    html = client.get(_url("session-detail", session.pk)).content.decode()
    assert "Approve plan" in html
    assert "nobody approved its plan in time; approving it may resume the work" in html


def test_it_offers_to_request_changes_next_to_approve(client, cast, conn, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    session = SessionFactory(connection=conn, state="AWAITING_PLAN_APPROVAL")
    ActivityFactory(session=session, kind="planGenerated", plan_id="r" * 32, plan_steps=[])
    client.force_login(cast.approver)
    for url in (_url("session-detail", session.pk), reverse("sessions_app:approvals")):
        html = client.get(url).content.decode()
        assert "<summary>Request changes</summary>" in html, url
        assert f'action="{_url("session-message", session.pk)}"' in html
    response = client.post(_url("session-message", session.pk), {"prompt": "Skip step 2"})
    assert response.status_code == 302
    action = OutboxAction.objects.get(kind="message")
    assert action.payload == {"prompt": "Skip step 2"} and action.actor == cast.approver
