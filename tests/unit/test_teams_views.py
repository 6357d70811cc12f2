"""The team pages: members, connections with their sync status, policy, and the forms."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from sessions_app.models import AuditEntry, Invitation, JulesConnection, Membership
from tests.factories import ConnectionFactory, UserFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def _team_url(cast):
    return reverse("sessions_app:team-detail", args=[cast.team.slug])


def _syncing(connection, done=3, total=10):
    JulesConnection.objects.filter(pk=connection.pk).update(
        sync_status="ok",
        sync_phase="activities",
        sync_done=done,
        sync_total=total,
        sync_claimed_until=timezone.now() + dt.timedelta(minutes=5),
        last_success_at=timezone.now() - dt.timedelta(minutes=3),
    )


def test_it_shows_members_connections_and_policy(client, cast):
    ConnectionFactory(
        team=cast.team,
        label="Broken account",
        sync_status="broken",
        last_error="Jules rejected this connection's API key.",
    )
    client.force_login(cast.viewer)
    html = client.get(_team_url(cast)).content.decode()
    for username in ("admin", "approver", "member", "viewer"):
        assert f'<td class="name">{username}' in html
    assert "Broken: needs attention" in html
    assert "Jules rejected this connection&#x27;s API key." in html
    assert "No successful sync yet." in html
    assert "Sessions launched here always wait for plan approval." in html


def test_it_shows_a_progress_bar_that_polls_only_while_syncing(client, cast):
    connection = ConnectionFactory(team=cast.team)
    client.force_login(cast.viewer)
    url = reverse("sessions_app:connection-detail", args=[connection.pk])
    idle = client.get(url).content.decode()
    assert "hx-trigger" not in idle and "<progress" not in idle
    _syncing(connection)
    for page in (client.get(url), client.get(_team_url(cast))):
        html = page.content.decode()
        assert 'hx-trigger="every 2s"' in html
        assert '<progress max="10" value="3"' in html
        assert "Reading new activity: 3 of 10" in html
        assert "Last successful sync 3\xa0minutes ago." in html
    target = {"HTTP_HX_TARGET": f"connection-{connection.pk}-status", **HTMX}
    fragment = client.get(url, **target)
    assert fragment.status_code == 200
    assert "<html" not in fragment.content.decode()
    assert 'hx-trigger="every 2s"' in fragment.content.decode()
    JulesConnection.objects.filter(pk=connection.pk).update(sync_phase="", sync_claimed_until=None)
    done = client.get(url, **target)
    assert done.status_code == 286
    assert "hx-trigger" not in done.content.decode()


def test_it_invites_and_answers_htmx_with_the_fragment(
    client, cast, mailoutbox, django_capture_on_commit_callbacks
):
    client.force_login(cast.admin)
    url = reverse("sessions_app:invitation-create", args=[cast.team.slug])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"email": "Newcomer@Example.com", "role": "approver"}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert 'id="team-members"' in html and "Waiting for an answer" in html
    assert "newcomer@example.com" in html
    assert "join when they accept" in response["HX-Trigger"]
    # Invited is not joined: the person decides, through the emailed link.
    invitation = Invitation.objects.get(email="newcomer@example.com")
    assert invitation.role == "approver" and invitation.status == "pending"
    assert [m.to for m in mailoutbox] == [["newcomer@example.com"]]
    again = client.post(url, {"email": "newcomer@example.com", "role": "viewer"}, **HTMX)
    assert "already has a pending invitation" in again.content.decode()
    cast.viewer.email = "viewer@example.com"
    cast.viewer.save()
    member = client.post(url, {"email": "viewer@example.com", "role": "admin"}, **HTMX)
    assert "already in the team as Viewer" in member.content.decode()


def test_it_shows_form_errors_on_the_full_page_without_htmx(client, cast):
    client.force_login(cast.admin)
    url = reverse("sessions_app:invitation-create", args=[cast.team.slug])
    response = client.post(url, {"email": "not an address", "role": "viewer"})
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html
    assert "Enter a valid email address" in html and 'value="not an address"' in html


def test_it_refuses_to_remove_or_demote_the_last_admin(client, cast):
    client.force_login(cast.admin)
    admin = Membership.objects.get(team=cast.team, user=cast.admin)
    remove = reverse("sessions_app:member-remove", args=[cast.team.slug, admin.pk])
    response = client.post(remove, **HTMX)
    assert "last admin" in response["HX-Trigger"]
    role = reverse("sessions_app:member-role", args=[cast.team.slug, admin.pk])
    client.post(role, {"role": "viewer"})
    assert Membership.objects.get(pk=admin.pk).role == "admin"
    html = client.get(_team_url(cast)).content.decode()
    assert "The last admin stays." in html


def test_it_sends_an_admin_who_left_to_the_teams_list(client, cast):
    Membership.objects.filter(team=cast.team, user=cast.approver).update(role="admin")
    client.force_login(cast.admin)
    admin = Membership.objects.get(team=cast.team, user=cast.admin)
    url = reverse("sessions_app:member-remove", args=[cast.team.slug, admin.pk])
    response = client.post(url, **HTMX)
    assert response["HX-Redirect"] == reverse("sessions_app:team-list")
    assert client.get(_team_url(cast)).status_code == 404


def test_it_adds_a_connection_whose_key_jules_accepts(
    client, cast, simulator, settings, django_capture_on_commit_callbacks
):
    settings.JULES_API_BASE_URL = simulator.base_url
    client.force_login(cast.admin)
    url = reverse("sessions_app:connection-add", args=[cast.team.slug])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url,
            {"label": "Shared", "api_key": "test-key"},
            **HTMX,
        )
    html = response.content.decode()
    assert 'id="team-connections"' in html and "Shared" in html
    connection = JulesConnection.objects.get(label="Shared")
    assert connection.get_api_key() == "test-key"
    # The first sync ran (eagerly here) once the connection was committed.
    connection.refresh_from_db()
    assert connection.last_success_at is not None
    assert "test-key" not in html


def test_it_saves_nothing_and_says_why_when_the_key_is_bad(client, cast, simulator, settings):
    settings.JULES_API_BASE_URL = simulator.base_url
    client.force_login(cast.admin)
    url = reverse("sessions_app:connection-add", args=[cast.team.slug])
    response = client.post(url, {"label": "Typo", "api_key": "sk-typo-4242"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Jules did not accept this API key" in html
    assert "sk-typo-4242" not in html
    assert 'value="Typo"' in html
    assert not JulesConnection.objects.exists()
    assert not AuditEntry.objects.filter(action="connection.add").exists()


def test_it_rotates_the_key_on_its_own_page(client, cast, simulator):
    connection = ConnectionFactory(
        team=cast.team, base_url=simulator.base_url, api_key="old-key", sync_status="broken"
    )
    client.force_login(cast.admin)
    url = reverse("sessions_app:connection-rotate", args=[connection.pk])
    page = client.get(url).content.decode()
    assert 'type="password"' in page and "old-key" not in page
    bad = client.post(url, {"api_key": "wrong-key"})
    assert "Jules did not accept this API key" in bad.content.decode()
    assert "wrong-key" not in bad.content.decode()
    good = client.post(url, {"api_key": "other-key"})
    assert good.status_code == 302
    connection.refresh_from_db()
    assert connection.get_api_key() == "other-key" and connection.sync_status == "never"


def test_it_disables_and_enables_from_the_team_page(client, cast):
    connection = ConnectionFactory(team=cast.team)
    client.force_login(cast.admin)
    url = reverse("sessions_app:connection-enabled", args=[connection.pk])
    response = client.post(url, {"enabled": "0", "from": "team"}, **HTMX)
    assert 'id="team-connections"' in response.content.decode()
    assert "Disabled" in response.content.decode()
    response = client.post(url, {"enabled": "1"}, **HTMX)
    assert f'id="connection-{connection.pk}"' in response.content.decode()
    actions = list(
        AuditEntry.objects.filter(action__startswith="connection.")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == ["connection.disable", "connection.enable"]


def test_it_saves_the_policy(client, cast):
    client.force_login(cast.admin)
    url = reverse("sessions_app:team-policy", args=[cast.team.slug])
    response = client.post(url, {"forbid_self_approval": "on"}, **HTMX)
    assert 'id="team-policy"' in response.content.decode()
    cast.team.refresh_from_db()
    assert cast.team.forbid_self_approval and not cast.team.require_plan_approval
    assert AuditEntry.objects.filter(action="policy.change").count() == 1


def test_it_serves_each_section_as_a_fragment(client, cast):
    client.force_login(cast.viewer)
    for section in ("members", "connections", "policy"):
        response = client.get(_team_url(cast), HTTP_HX_TARGET=f"team-{section}", **HTMX)
        html = response.content.decode()
        assert "<html" not in html and f'id="team-{section}"' in html


def test_it_lists_the_users_teams_with_roles(client, cast):
    client.force_login(cast.approver)
    html = client.get(reverse("sessions_app:team-list")).content.decode()
    assert "Acme" in html and "Approver" in html and "Globex" not in html


def test_it_serves_the_teams_list_as_a_fragment(client, cast):
    client.force_login(cast.viewer)
    response = client.get(reverse("sessions_app:team-list"), HTTP_HX_TARGET="teams", **HTMX)
    html = response.content.decode()
    assert "<html" not in html and 'id="teams"' in html and "Acme" in html


@pytest.mark.parametrize(
    "key, says",
    [
        ("ключ-42", "not an API key Jules could accept"),
        ("two words", "not an API key Jules could accept"),
        ("sk-anything", "Could not reach Jules"),
    ],
)
def test_it_answers_bad_connection_input_with_a_clear_message(client, cast, settings, key, says):
    settings.JULES_RETRY_BUDGET = 0.5
    settings.JULES_API_BASE_URL = "http://127.0.0.1:9/v1alpha"
    client.force_login(cast.admin)
    url = reverse("sessions_app:connection-add", args=[cast.team.slug])
    response = client.post(url, {"label": "Odd", "api_key": key})
    html = response.content.decode()
    assert response.status_code == 200 and says in html
    assert key not in html
    assert not JulesConnection.objects.exists()


def test_it_changes_a_connection_only_when_told_which_way(client, cast):
    connection = ConnectionFactory(team=cast.team)
    client.force_login(cast.admin)
    url = reverse("sessions_app:connection-enabled", args=[connection.pk])
    for data in ({}, {"enabled": "yes"}, {"enabled": ""}):
        response = client.post(url, data)
        assert response.status_code == 400 and b"enabled=0" in response.content
    connection.refresh_from_db()
    assert connection.enabled
    assert not AuditEntry.objects.filter(action__startswith="connection.").exists()


def test_the_header_offers_templates_and_analytics_only_to_people_in_a_team(client, cast):
    templates = reverse("sessions_app:template-list")
    analytics = reverse("sessions_app:analytics")
    client.force_login(cast.viewer)
    page = client.get(reverse("sessions_app:team-list")).content.decode()
    assert f'href="{templates}"' in page and f'href="{analytics}"' in page
    client.force_login(UserFactory(username="loner"))
    page = client.get(reverse("sessions_app:team-list")).content.decode()
    assert f'href="{templates}"' not in page and f'href="{analytics}"' not in page
    assert "Sessions</a>" in page
