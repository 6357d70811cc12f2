"""Launching: the form and its htmx parts, validation, the action page, and the whole path
against the simulator with eager Celery."""

from __future__ import annotations

import pytest
from django.urls import reverse

from sessions_app import sync
from sessions_app.models import OutboxAction, Session
from tests.factories import ConnectionFactory, SourceFactory

pytestmark = pytest.mark.django_db

URL = "/sessions/new"
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def conn(cast):
    return ConnectionFactory(team=cast.team, label="Main account")


@pytest.fixture
def billing(conn):
    return SourceFactory(
        connection=conn, repo="billing", branches=["main", "release-2026.03"], default_branch="main"
    )


def _form(conn, source=None, **extra):
    data = {
        "connection": conn.pk,
        "source": source.pk if source else "",
        "branch": "",
        "prompt": "Add rounding tests",
        "title": "",
        "require_plan_approval": "on",
    }
    data.update(extra)
    return data


# --- the form -------------------------------------------------------------------------


def test_it_offers_the_connections_the_user_may_launch_from(client, cast, conn, billing):
    ConnectionFactory(team=cast.team, label="Switched off", enabled=False)
    ConnectionFactory(team=cast.other_team, label="Globex account")
    client.force_login(cast.member)
    html = client.get(URL).content.decode()
    assert "Main account (Acme)" in html
    assert "Switched off" not in html and "Globex account" not in html
    assert f'<option value="{billing.pk}" >acme/billing</option>' in html
    assert "No repository (repoless session)" in html


def test_it_tells_viewers_why_they_cannot_launch(client, cast, conn):
    client.force_login(cast.viewer)
    html = client.get(URL).content.decode()
    assert "You have no connection to launch from." in html and "<textarea" not in html


def test_it_reloads_the_branches_for_the_chosen_repository(client, cast, billing):
    client.force_login(cast.member)
    response = client.get(reverse("sessions_app:launch-branches"), {"source": billing.pk}, **HTMX)
    html = response.content.decode()
    assert '<select name="branch" id="id_branch">' in html
    assert '<option value="main" selected>main (default)</option>' in html
    assert '<option value="release-2026.03" >release-2026.03</option>' in html
    repoless = client.get(reverse("sessions_app:launch-branches"), {"source": ""}, **HTMX)
    assert "A repoless session has no branch." in repoless.content.decode()


def test_it_shows_no_branches_of_another_teams_repository(client, cast):
    foreign = SourceFactory(connection=ConnectionFactory(team=cast.other_team), repo="secret")
    client.force_login(cast.member)
    html = client.get(reverse("sessions_app:launch-branches"), {"source": foreign.pk}, **HTMX)
    assert "develop" not in html.content.decode()


def test_it_reloads_the_repositories_for_the_chosen_connection(client, cast, conn, billing):
    second = ConnectionFactory(team=cast.team, label="Second account")
    web = SourceFactory(connection=second, repo="web")
    second.team.require_plan_approval = False
    second.team.save()
    client.force_login(cast.member)
    response = client.get(
        URL, {"connection": second.pk}, HTTP_HX_TARGET="launch-repo-fields", **HTMX
    )
    html = response.content.decode()
    assert html.strip().startswith('<div id="launch-repo-fields"')
    assert f'value="{web.pk}"' in html and f'value="{billing.pk}"' not in html


def test_it_filters_the_repositories_by_name(client, cast, conn, billing):
    SourceFactory(connection=conn, repo="web")
    client.force_login(cast.member)
    response = client.get(
        URL, {"connection": conn.pk, "source_q": "bill"}, HTTP_HX_TARGET="id_source", **HTMX
    )
    html = response.content.decode()
    assert html.strip().startswith('<select name="source" id="id_source"')
    assert "acme/billing" in html and "acme/web" not in html


def test_it_forces_plan_approval_when_the_policy_says_so(client, cast, conn):
    client.force_login(cast.member)
    html = client.get(URL).content.decode()
    assert 'value="on"\n        checked disabled aria-describedby="approval-forced"' in html
    assert "Acme's policy requires plan approval" in html
    cast.team.require_plan_approval = False
    cast.team.save()
    html = client.get(URL).content.decode()
    assert "approval-forced" not in html
    assert 'id="id_require_plan_approval" value="on"\n        checked >' in html


# --- validation -----------------------------------------------------------------------


def test_it_keeps_what_was_typed_when_the_form_is_wrong(client, cast, conn, billing):
    client.force_login(cast.member)
    response = client.post(
        URL,
        _form(
            conn,
            billing,
            prompt="   ",
            title="Kept <title>",
            branch="release-2026.03",
            auto_create_pr="on",
        ),
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Say what Jules should do." in html and 'aria-invalid="true"' in html
    assert 'value="Kept &lt;title&gt;"' in html
    assert f'<option value="{billing.pk}" selected>' in html
    assert '<option value="release-2026.03" selected>' in html
    assert 'id="id_auto_create_pr" value="on" checked' in html
    assert not OutboxAction.objects.exists()


@pytest.mark.parametrize(
    "change, error",
    [
        ({"source": "999999"}, "Pick a repository this connection has synced."),
        ({"source": "abc"}, "Pick a repository this connection has synced."),
        ({"branch": "nope"}, "acme/billing has no branch &#x27;nope&#x27;."),
        ({"connection": "0"}, "Pick one of the connections you may launch from."),
    ],
)
def test_it_explains_each_mistake(client, cast, conn, billing, change, error):
    client.force_login(cast.member)
    response = client.post(URL, {**_form(conn, billing), **change})
    assert error in response.content.decode()
    assert not OutboxAction.objects.exists()


def test_it_refuses_a_connection_of_another_team_or_role(client, cast, conn):
    foreign = ConnectionFactory(team=cast.other_team)
    client.force_login(cast.member)
    response = client.post(URL, _form(foreign))
    assert "Pick one of the connections you may launch from." in response.content.decode()
    client.force_login(cast.viewer)
    client.post(URL, _form(conn))
    assert not OutboxAction.objects.exists()


def test_it_refuses_a_repository_of_another_connection(client, cast, conn):
    other = SourceFactory(connection=ConnectionFactory(team=cast.team), repo="other")
    client.force_login(cast.member)
    response = client.post(URL, _form(conn, other))
    assert "Pick a repository this connection has synced." in response.content.decode()


# --- a launch and its action ----------------------------------------------------------


def test_it_queues_the_launch_and_shows_its_progress(client, cast, conn, billing, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    cast.team.require_plan_approval = False
    cast.team.save()
    client.force_login(cast.member)
    response = client.post(
        URL, _form(conn, billing, require_plan_approval="", auto_create_pr="on", title="T")
    )
    action = OutboxAction.objects.get(kind="launch")
    assert response.status_code == 302
    assert response["Location"] == reverse("sessions_app:action-status", args=[action.pk])
    assert action.payload == {
        "prompt": "Add rounding tests",
        "title": "T",
        "source": "sources/github/acme/billing",
        "starting_branch": "main",
        "require_plan_approval": False,
        "automation_mode": "AUTO_CREATE_PR",
    }
    page = client.get(response["Location"]).content.decode()
    assert "Launching your session" in page and 'hx-trigger="every 1s"' in page
    fragment = client.get(response["Location"], **HTMX)
    assert fragment.status_code == 200 and "<html" not in fragment.content.decode()


def test_it_launches_repoless_sessions(client, cast, conn, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    client.force_login(cast.member)
    client.post(URL, _form(conn, None, branch="ignored"))
    payload = OutboxAction.objects.get(kind="launch").payload
    assert payload["source"] == "" and payload["starting_branch"] == ""
    assert payload["require_plan_approval"] is True


def test_it_shows_why_a_launch_failed_and_offers_the_form_again(client, cast, conn, billing):
    action = OutboxAction.objects.create(
        team=cast.team,
        connection=conn,
        actor=cast.member,
        kind="launch",
        status="failed",
        last_error="Jules rejected the request: startingBranch is required.",
        payload={
            "prompt": "Add rounding tests",
            "title": "Rounding",
            "source": billing.name,
            "starting_branch": "release-2026.03",
            "require_plan_approval": True,
            "automation_mode": "AUTO_CREATE_PR",
        },
    )
    client.force_login(cast.member)
    url = reverse("sessions_app:action-status", args=[action.pk])
    html = client.get(url).content.decode()
    assert "Jules did not take it: Jules rejected the request" in html
    assert "every 1s" not in html
    assert client.get(url, **HTMX).status_code == 286
    form = client.get(URL, {"retry": str(action.pk)}).content.decode()
    assert ">Add rounding tests</textarea>" in form and 'value="Rounding"' in form
    assert f'<option value="{billing.pk}" selected>' in form
    assert '<option value="release-2026.03" selected>' in form
    assert 'id="id_auto_create_pr" value="on" checked' in form


def test_it_shows_an_action_only_to_its_author(client, cast, conn):
    action = OutboxAction.objects.create(
        team=cast.team, connection=conn, actor=cast.member, kind="launch", payload={}
    )
    client.force_login(cast.admin)
    assert client.get(reverse("sessions_app:action-status", args=[action.pk])).status_code == 404
    form = client.get(URL, {"retry": str(action.pk)})
    assert form.status_code == 200


def test_it_moves_on_to_the_session_once_delivery_created_it(client, cast, conn):
    session = Session.objects.create(
        team=cast.team, connection=conn, remote_id="1", name="sessions/1", state="QUEUED"
    )
    action = OutboxAction.objects.create(
        team=cast.team,
        connection=conn,
        actor=cast.member,
        kind="launch",
        payload={},
        status="done",
        session=session,
    )
    client.force_login(cast.member)
    url = reverse("sessions_app:action-status", args=[action.pk])
    assert client.get(url, **HTMX)["HX-Redirect"] == f"/sessions/{session.pk}/"
    assert client.get(url)["Location"] == f"/sessions/{session.pk}/"


# --- the whole path against the simulator ---------------------------------------------


def _committed(django_capture_on_commit_callbacks, call):
    with django_capture_on_commit_callbacks(execute=True):
        return call()


def test_it_launches_approves_answers_and_completes_through_the_pages(
    client, cast, simulator, sim_connection, django_capture_on_commit_callbacks
):
    sync.sync_connection(sim_connection.pk)
    billing = sim_connection.sources.get(repo="billing")
    client.force_login(cast.member)
    response = _committed(
        django_capture_on_commit_callbacks,
        lambda: client.post(
            URL,
            _form(
                sim_connection,
                billing,
                prompt="Add rounding tests [sim:question]",
                auto_create_pr="on",
            ),
        ),
    )
    action = OutboxAction.objects.get(kind="launch")
    assert action.status == "done", action.last_error
    session = Session.objects.get(pk=action.session_id)
    assert session.launched_by == cast.member and session.starting_branch == "main"
    assert client.get(response["Location"])["Location"] == f"/sessions/{session.pk}/"

    simulator.advance(70)
    sync.sync_one_session(session.pk)
    client.force_login(cast.approver)
    header = client.get(f"/sessions/{session.pk}/live/", **HTMX).content.decode()
    assert "Awaiting plan approval" in header and "Approve plan</button>" in header
    _committed(
        django_capture_on_commit_callbacks,
        lambda: client.post(
            f"/sessions/{session.pk}/approve/", HTTP_HX_TARGET=f"approval-{session.pk}", **HTMX
        ),
    )
    assert simulator.request_counts()["sessions.approvePlan"] == 1

    simulator.advance(120)
    sync.sync_one_session(session.pk)
    session.refresh_from_db()
    assert session.state == "AWAITING_USER_FEEDBACK"
    client.force_login(cast.member)
    pending = _committed(
        django_capture_on_commit_callbacks,
        lambda: client.post(
            f"/sessions/{session.pk}/message/", {"prompt": "Toward zero, please."}, **HTMX
        ),
    )
    assert pending.status_code == 200
    assert OutboxAction.objects.get(kind="message").status == "done"

    simulator.advance(1800)
    sync.sync_one_session(session.pk)
    session.refresh_from_db()
    assert session.state == "COMPLETED"
    html = client.get(f"/sessions/{session.pk}/").content.decode()
    assert "<p>Toward zero, please.</p>" in html
    assert 'class="diff-add"' in html and "Pull request</a>" in html
    assert "Session completed." in html and "every 3s" not in html
    assert 'id="pending-' not in html


def test_it_survives_hand_made_values(client, cast, conn, billing):
    client.force_login(cast.member)
    huge = "9" * 30
    assert client.post(URL, _form(conn, billing, connection=huge)).status_code == 200
    assert client.post(URL, {**_form(conn, billing), "source": huge}).status_code == 200
    assert (
        client.get(URL, {"retry": "not-a-uuid", "connection": huge, "source": huge}).status_code
        == 200
    )
    branches = reverse("sessions_app:launch-branches")
    assert client.get(branches, {"source": huge}, **HTMX).status_code == 200
    assert not OutboxAction.objects.exists()
