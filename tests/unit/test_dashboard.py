"""The sessions list, the session page, actions and launch, with the cast of users."""

from __future__ import annotations

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from sessions_app import services, sync
from sessions_app.jules.client import JulesClient
from sessions_app.models import AuditEntry, OutboxAction, Session
from sessions_app.rendering import parse_diff, render_markdown
from tests.factories import ActivityFactory, ConnectionFactory, SessionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def team_sessions(cast):
    connection = ConnectionFactory(team=cast.team)
    done = SessionFactory(connection=connection, title="Finished work", state="COMPLETED")
    live = SessionFactory(
        connection=connection, title="Live work", state="IN_PROGRESS", repo="acme/web"
    )
    waiting = SessionFactory(
        connection=connection,
        title="Needs a yes",
        state="AWAITING_PLAN_APPROVAL",
        launched_by=cast.member,
    )
    other = SessionFactory(
        connection=ConnectionFactory(team=cast.other_team), title="Globex secret"
    )
    return {"done": done, "live": live, "waiting": waiting, "other": other}


def test_it_lists_only_the_teams_sessions(client, cast, team_sessions):
    client.force_login(cast.viewer)
    html = client.get(reverse("sessions_app:session-list")).content.decode()
    assert "Finished work" in html and "Live work" in html
    assert "Globex secret" not in html


def test_it_serves_the_results_fragment_to_htmx(client, cast, team_sessions):
    client.force_login(cast.viewer)
    response = client.get(
        reverse("sessions_app:session-list"),
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="session-results",
    )
    html = response.content.decode()
    assert "<html" not in html and 'id="session-results"' in html


def test_it_combines_filters_and_search(client, cast, team_sessions):
    client.force_login(cast.viewer)
    url = reverse("sessions_app:session-list")
    html = client.get(url, {"state": ["IN_PROGRESS", "COMPLETED"], "q": "live"}).content.decode()
    assert "Live work" in html and "Finished work" not in html and "Needs a yes" not in html
    html = client.get(url, {"attention": "1"}).content.decode()
    assert "Needs a yes" in html and "Live work" not in html
    html = client.get(url, {"launched_by": "member"}).content.decode()
    assert "Needs a yes" in html and "Finished work" not in html
    html = client.get(url, {"repo": "acme/web"}).content.decode()
    assert "Live work" in html and "Finished work" not in html


def test_it_ignores_bad_filter_values_with_a_message(client, cast, team_sessions):
    client.force_login(cast.viewer)
    response = client.get(
        reverse("sessions_app:session-list"),
        {"created_after": "not-a-date", "connection": "abc", "state": "BOGUS", "page": "x"},
    )
    assert response.status_code == 200
    assert "could not read" in response.content.decode()
    assert "Finished work" in response.content.decode()


def test_it_polls_only_rows_that_can_change(client, cast, team_sessions):
    client.force_login(cast.viewer)
    html = client.get(reverse("sessions_app:session-list")).content.decode()
    live_row = html.split(f'id="session-{team_sessions["live"].pk}"')[1].split(">")[0]
    done_row = html.split(f'id="session-{team_sessions["done"].pk}"')[1].split(">")[0]
    assert 'hx-trigger="every 5s"' in live_row
    assert "hx-trigger" not in done_row
    row = client.get(reverse("sessions_app:session-row", args=[team_sessions["done"].pk]))
    assert row.status_code == 286


def test_it_keeps_the_query_count_constant(client, cast, team_sessions):
    client.force_login(cast.viewer)
    url = reverse("sessions_app:session-list")
    with CaptureQueriesContext(db_connection) as few:
        client.get(url)
    connection = team_sessions["done"].connection
    SessionFactory.create_batch(120, connection=connection, launched_by=cast.member)
    with CaptureQueriesContext(db_connection) as many:
        client.get(url)
    with CaptureQueriesContext(db_connection) as later:
        client.get(url, {"page": "3", "state": "COMPLETED"})
    assert len(few) == len(many) == len(later)


def test_it_answers_404_to_outsiders_everywhere(client, cast, team_sessions):
    client.force_login(cast.outsider)
    pk = team_sessions["live"].pk
    for name in ("session-detail", "session-row", "session-activities"):
        assert client.get(reverse(f"sessions_app:{name}", args=[pk])).status_code == 404
    for name in ("session-approve", "session-message", "session-archive", "session-delete"):
        assert client.post(reverse(f"sessions_app:{name}", args=[pk])).status_code == 404


def test_it_shows_the_timeline_and_stops_polling_when_finished(client, cast, team_sessions):
    live = team_sessions["live"]
    ActivityFactory(
        session=live, kind="agentMessaged", message="**bold** <script>alert(1)</script>"
    )
    client.force_login(cast.viewer)
    html = client.get(reverse("sessions_app:session-detail", args=[live.pk])).content.decode()
    assert "<strong>bold</strong>" in html
    assert "<script>alert(1)</script>" not in html
    assert 'hx-trigger="every 3s"' in html
    done = team_sessions["done"]
    html = client.get(reverse("sessions_app:session-detail", args=[done.pk])).content.decode()
    assert 'hx-trigger="every 3s"' not in html
    poll = client.get(reverse("sessions_app:session-activities", args=[done.pk]), {"after": "0"})
    assert poll.status_code == 286


def test_it_explains_why_the_composer_is_disabled(client, cast, team_sessions):
    client.force_login(cast.viewer)
    html = client.get(
        reverse("sessions_app:session-detail", args=[team_sessions["live"].pk])
    ).content.decode()
    assert "cannot message the agent" in html


def test_it_approves_once_when_two_approvers_click_together(cast, team_sessions, settings):
    waiting = team_sessions["waiting"]
    ActivityFactory(session=waiting, kind="planGenerated", plan_id="a" * 32)
    first = services.session_approve_plan(user=cast.approver, session=waiting)
    second = services.session_approve_plan(user=cast.admin, session=waiting)
    assert first.pk == second.pk
    assert OutboxAction.objects.filter(kind="approve").count() == 1
    assert AuditEntry.objects.filter(action="session.approve").count() == 1


def test_it_enforces_the_approval_policy(cast, team_sessions):
    waiting = team_sessions["waiting"]
    with pytest.raises(services.ActionNotAllowed):
        services.session_approve_plan(user=cast.member, session=waiting)
    cast.team.forbid_self_approval = True
    cast.team.save()
    waiting.launched_by = cast.approver
    waiting.save()
    waiting.refresh_from_db()
    with pytest.raises(services.ActionNotAllowed, match="launched"):
        services.session_approve_plan(user=cast.approver, session=waiting)


def _committed(django_capture_on_commit_callbacks, call):
    with django_capture_on_commit_callbacks(execute=True):
        return call()


def test_it_launches_approves_and_messages_through_the_simulator(
    client, cast, simulator, django_capture_on_commit_callbacks
):
    connection = ConnectionFactory(team=cast.team, base_url=simulator.base_url, api_key="test-key")
    sync.sync_connection(connection.pk)
    client.force_login(cast.member)
    response = _committed(
        django_capture_on_commit_callbacks,
        lambda: client.post(
            reverse("sessions_app:session-launch"),
            {
                "connection": connection.pk,
                "source": "sources/github/acme/billing",
                "branch": "main",
                "prompt": "Add rounding tests [sim:question]",
                "require_plan_approval": "on",
                "auto_create_pr": "on",
            },
        ),
    )
    assert response.status_code == 302
    action = OutboxAction.objects.get(kind="launch")
    assert action.status == "done", action.last_error
    session = Session.objects.get(pk=action.session_id)
    assert session.launched_by == cast.member
    assert client.get(response["Location"]).status_code == 302
    simulator.advance(70)
    sync.sync_one_session(session.pk)
    session.refresh_from_db()
    assert session.state == "AWAITING_PLAN_APPROVAL"
    client.force_login(cast.approver)
    _committed(
        django_capture_on_commit_callbacks,
        lambda: client.post(reverse("sessions_app:session-approve", args=[session.pk])),
    )
    assert OutboxAction.objects.get(kind="approve").status == "done"
    assert simulator.request_counts()["sessions.approvePlan"] == 1
    simulator.advance(60)
    sync.sync_one_session(session.pk)
    session.refresh_from_db()
    assert session.state == "AWAITING_USER_FEEDBACK"
    client.force_login(cast.member)
    _committed(
        django_capture_on_commit_callbacks,
        lambda: client.post(
            reverse("sessions_app:session-message", args=[session.pk]), {"prompt": "Toward zero."}
        ),
    )
    simulator.advance(900)
    sync.sync_one_session(session.pk)
    session.refresh_from_db()
    assert session.state == "COMPLETED"
    html = client.get(reverse("sessions_app:session-detail", args=[session.pk])).content.decode()
    assert "Toward zero." in html and "diff-add" in html and "Pull request" in html


def test_it_keeps_the_typed_launch_form_on_errors(client, cast, team_sessions):
    client.force_login(cast.member)
    response = client.post(
        reverse("sessions_app:session-launch"),
        {
            "connection": team_sessions["done"].connection.pk,
            "prompt": "",
            "title": "Kept title",
            "source": "sources/nope",
        },
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Kept title" in html and "Say what Jules should do." in html


def test_it_marks_a_failed_delivery_with_its_reason(
    cast, simulator, team_sessions, django_capture_on_commit_callbacks
):
    connection = ConnectionFactory(team=cast.team, base_url=simulator.base_url, api_key="test-key")
    remote = JulesClient("test-key", simulator.base_url).create_session(prompt="x")
    session = sync.upsert_remote_session(connection, remote)
    message = _committed(
        django_capture_on_commit_callbacks,
        lambda: services.session_send_message(user=cast.member, session=session, prompt="hello"),
    )
    message.refresh_from_db()
    assert message.status == "done"
    Session.objects.filter(pk=session.pk).update(state="AWAITING_PLAN_APPROVAL")
    session.refresh_from_db()
    approve = _committed(
        django_capture_on_commit_callbacks,
        lambda: services.session_approve_plan(user=cast.approver, session=session),
    )
    approve.refresh_from_db()
    assert approve.status == "failed"
    assert "Jules refused" in approve.last_error


def test_it_renders_markdown_inert_and_parses_diffs():
    html = render_markdown("[x](javascript:alert(1)) <img src=x onerror=alert(1)> `code`")
    assert "javascript:" not in html and "onerror" not in html and "<code>code</code>" in html
    files = parse_diff(
        "diff --git a/a.py b/a.py\nindex 1..2 100644\n--- a/a.py\n+++ b/a.py\n@@ -3,2 +3,3 @@\n ctx\n-old\n+new\n+more\n"
    )
    assert len(files) == 1 and files[0].added == 2 and files[0].removed == 1
    adds = [line for line in files[0].lines if line.kind == "add"]
    assert [a.new for a in adds] == [4, 5]


def test_it_shows_unknown_kinds_media_and_bash_output(client, cast, simulator):
    connection = ConnectionFactory(team=cast.team, base_url=simulator.base_url, api_key="test-key")
    remote = JulesClient("test-key", simulator.base_url).create_session(
        prompt="UI check [sim:happy bash=1 media=1 unknown=1]"
    )
    simulator.advance(2000)
    session = sync.upsert_remote_session(connection, remote)
    sync.sync_one_session(session.pk)
    client.force_login(cast.viewer)
    html = client.get(reverse("sessions_app:session-detail", args=[session.pk])).content.decode()
    assert "Searched the code" in html
    assert 'src="data:image/png;base64,' in html
    assert "<summary>$ pytest -q</summary>" in html
