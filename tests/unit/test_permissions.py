"""The permission matrix of the team, audit and approval URLs, with the cast.

Each role sees and does exactly what it may: viewers and above read, only admins change the
team, approvers and admins approve, and the outsider gets a 404 everywhere.
"""

from __future__ import annotations

from unittest import mock

import pytest
from django.urls import reverse

from sessions_app.models import AuditEntry, JulesConnection, Membership, OutboxAction
from tests.factories import ActivityFactory, ConnectionFactory, SessionFactory, UserFactory

pytestmark = pytest.mark.django_db

ROLES = ("admin", "approver", "member", "viewer", "outsider")


@pytest.fixture
def world(cast):
    connection = ConnectionFactory(team=cast.team, label="Team account")
    session = SessionFactory(
        connection=connection, state="AWAITING_PLAN_APPROVAL", launched_by=cast.member
    )
    ActivityFactory(session=session, kind="planGenerated", plan_id="a" * 32)
    UserFactory(username="newcomer")
    return {"connection": connection, "session": session}


def _get_urls(cast, world):
    team, connection, session = cast.team, world["connection"], world["session"]
    return {
        "team-detail": reverse("sessions_app:team-detail", args=[team.slug]),
        "connection-detail": reverse("sessions_app:connection-detail", args=[connection.pk]),
        "session-history": reverse("sessions_app:session-history", args=[session.pk]),
    }


@pytest.mark.parametrize("role", ROLES)
def test_it_shows_team_pages_to_members_only(client, cast, world, role):
    client.force_login(cast.by_role()[role])
    for name, url in _get_urls(cast, world).items():
        expected = 404 if role == "outsider" else 200
        assert client.get(url).status_code == expected, (name, role)


@pytest.mark.parametrize("role", ROLES)
def test_it_shows_the_lists_to_everyone_scoped_to_their_teams(client, cast, world, role):
    client.force_login(cast.by_role()[role])
    teams = client.get(reverse("sessions_app:team-list")).content.decode()
    assert ("Acme" in teams) is (role != "outsider")
    assert ("Globex" in teams) is (role == "outsider")
    approvals = client.get(reverse("sessions_app:approvals")).content.decode()
    assert (world["session"].display_title in approvals) is (role in {"admin", "approver"})
    audit = client.get(reverse("sessions_app:audit"))
    assert audit.status_code == 200
    for fmt in ("csv", "json"):
        export = client.get(reverse("sessions_app:audit-export", args=[fmt]))
        assert export.status_code == 200 and export.streaming


@pytest.mark.parametrize("role", ROLES)
def test_it_shows_the_admin_forms_to_admins_only(client, cast, world, role):
    if role == "outsider":
        return
    client.force_login(cast.by_role()[role])
    html = client.get(reverse("sessions_app:team-detail", args=[cast.team.slug])).content.decode()
    connection_html = client.get(
        reverse("sessions_app:connection-detail", args=[world["connection"].pk])
    ).content.decode()
    is_admin = role == "admin"
    assert ("Add a member" in html) is is_admin
    assert ("Add a connection" in html) is is_admin
    assert ("Save the policy" in html) is is_admin
    assert ("Rotate key" in html) is is_admin
    assert ("Disable" in connection_html) is is_admin
    rotate = client.get(reverse("sessions_app:connection-rotate", args=[world["connection"].pk]))
    assert rotate.status_code == (200 if is_admin else 403)


def _posts(cast, world):
    team, connection = cast.team, world["connection"]
    viewer_membership = Membership.objects.get(team=team, user=cast.viewer)
    member_membership = Membership.objects.get(team=team, user=cast.member)
    return [
        (
            reverse("sessions_app:member-add", args=[team.slug]),
            {"username": "newcomer", "role": "viewer"},
            lambda: Membership.objects.filter(user__username="newcomer").exists(),
        ),
        (
            reverse("sessions_app:member-role", args=[team.slug, viewer_membership.pk]),
            {"role": "member"},
            lambda: Membership.objects.get(pk=viewer_membership.pk).role == "member",
        ),
        (
            reverse("sessions_app:member-remove", args=[team.slug, member_membership.pk]),
            {},
            lambda: not Membership.objects.filter(pk=member_membership.pk).exists(),
        ),
        (
            reverse("sessions_app:connection-add", args=[team.slug]),
            {"label": "New one", "api_key": "sk-new", "base_url": "http://127.0.0.1:9/v1alpha"},
            lambda: JulesConnection.objects.filter(label="New one").exists(),
        ),
        (
            reverse("sessions_app:team-policy", args=[team.slug]),
            {"forbid_self_approval": "on", "require_plan_approval": "on"},
            lambda: type(team).objects.get(pk=team.pk).forbid_self_approval,
        ),
        (
            reverse("sessions_app:connection-enabled", args=[connection.pk]),
            {"enabled": "0"},
            lambda: not JulesConnection.objects.get(pk=connection.pk).enabled,
        ),
        (
            reverse("sessions_app:connection-rotate", args=[connection.pk]),
            {"api_key": "sk-rotated"},
            lambda: JulesConnection.objects.get(pk=connection.pk).get_api_key() == "sk-rotated",
        ),
    ]


@pytest.mark.parametrize("role", ROLES)
def test_it_lets_only_admins_change_the_team(client, cast, world, role):
    client.force_login(cast.by_role()[role])
    with mock.patch("sessions_app.services.check_api_key"):
        for url, data, changed in _posts(cast, world):
            response = client.post(url, data)
            if role == "admin":
                assert response.status_code == 302, url
                assert changed(), url
            else:
                assert response.status_code == (404 if role == "outsider" else 403), url
                assert not changed(), url
    changes = AuditEntry.objects.exclude(action__startswith="auth.").count()
    assert changes == (7 if role == "admin" else 0)


@pytest.mark.parametrize("role", ROLES)
def test_it_lets_approvers_and_admins_approve(client, cast, world, role):
    client.force_login(cast.by_role()[role])
    response = client.post(reverse("sessions_app:session-approve", args=[world["session"].pk]))
    approved = OutboxAction.objects.filter(kind="approve").exists()
    if role == "outsider":
        assert response.status_code == 404 and not approved
    else:
        assert response.status_code == 302
        assert approved is (role in {"admin", "approver"})


def test_it_hides_other_teams_objects_behind_404s(client, cast, world):
    foreign = ConnectionFactory(team=cast.other_team)
    foreign_session = SessionFactory(connection=foreign)
    foreign_membership = Membership.objects.get(team=cast.other_team)
    client.force_login(cast.admin)
    assert client.get(reverse("sessions_app:team-detail", args=["globex"])).status_code == 404
    assert (
        client.get(reverse("sessions_app:connection-detail", args=[foreign.pk])).status_code == 404
    )
    assert (
        client.get(reverse("sessions_app:session-history", args=[foreign_session.pk])).status_code
        == 404
    )
    # A membership of another team under this team's URL is not found either.
    url = reverse("sessions_app:member-remove", args=["acme", foreign_membership.pk])
    assert client.post(url).status_code == 404
    assert Membership.objects.filter(pk=foreign_membership.pk).exists()
