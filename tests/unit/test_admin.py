"""The admin: connections take a write-only key that Jules must accept before it is saved;
team, member, policy and connection changes made here are audited; audit entries and outbox
actions cannot be changed."""

from __future__ import annotations

import pytest
from django.urls import reverse

from sessions_app.models import AuditEntry, JulesConnection, Membership, Team
from tests.factories import ConnectionFactory, UserFactory

pytestmark = pytest.mark.django_db

SECRET = "sk-admin-added-123"


@pytest.fixture
def operator(client):
    user = UserFactory(username="operator", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


@pytest.fixture
def live_key(simulator):
    import requests

    requests.post(
        f"{simulator.admin_url}/accounts", json={"keys": [SECRET]}, timeout=5
    ).raise_for_status()
    return SECRET


def _connection_form(team, base_url, api_key="", label="Alice's Jules", enabled=True):
    data = {"team": team.pk, "label": label, "base_url": base_url, "api_key": api_key}
    if enabled:
        data["enabled"] = "on"
    return data


def test_it_adds_a_connection_whose_key_jules_accepts(
    client, operator, cast, simulator, live_key, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:sessions_app_julesconnection_add"),
            _connection_form(cast.team, simulator.base_url, live_key),
        )
    assert response.status_code == 302
    connection = JulesConnection.objects.get(label="Alice's Jules")
    assert connection.get_api_key() == SECRET
    assert SECRET not in connection.api_key_encrypted
    assert connection.added_by == operator
    # The key was tried before saving, and the first sync ran once it was committed.
    assert simulator.request_counts()["sources.list"] >= 1
    connection.refresh_from_db()
    assert connection.last_success_at is not None
    page = client.get(reverse("admin:sessions_app_julesconnection_change", args=[connection.pk]))
    assert SECRET.encode() not in page.content
    entry = AuditEntry.objects.get(action="connection.add", target_id=str(connection.pk))
    assert entry.actor == operator and entry.team_id == cast.team.pk
    assert SECRET not in str(entry.details)


def test_it_saves_nothing_when_jules_rejects_the_key(client, operator, cast, simulator):
    response = client.post(
        reverse("admin:sessions_app_julesconnection_add"),
        _connection_form(cast.team, simulator.base_url, "sk-typo-4242"),
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Jules did not accept this API key" in html
    assert "sk-typo-4242" not in html
    assert not JulesConnection.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="connection.").exists()


def test_it_says_so_when_jules_cannot_be_reached(client, operator, cast, settings):
    settings.JULES_CONNECT_TIMEOUT = 1
    settings.JULES_RETRY_BUDGET = 0.5
    response = client.post(
        reverse("admin:sessions_app_julesconnection_add"),
        _connection_form(cast.team, "http://127.0.0.1:9/v1alpha", "sk-anything"),
    )
    assert response.status_code == 200
    assert "Could not reach Jules" in response.content.decode()
    assert not JulesConnection.objects.exists()


def test_it_rotates_a_key_only_once_jules_accepts_it(client, operator, cast, simulator):
    connection = ConnectionFactory(
        team=cast.team, base_url=simulator.base_url, api_key="test-key", label="Shared"
    )
    url = reverse("admin:sessions_app_julesconnection_change", args=[connection.pk])
    bad = client.post(url, _connection_form(cast.team, simulator.base_url, "wrong", "Shared"))
    assert "Jules did not accept this API key" in bad.content.decode()
    connection.refresh_from_db()
    assert connection.get_api_key() == "test-key"
    good = client.post(url, _connection_form(cast.team, simulator.base_url, "other-key", "Shared"))
    assert good.status_code == 302
    connection.refresh_from_db()
    assert connection.get_api_key() == "other-key" and connection.key_rotated_at is not None
    actions = list(
        AuditEntry.objects.exclude(action__startswith="auth.").values_list("action", flat=True)
    )
    assert actions == ["connection.rotate"]


def test_it_checks_the_stored_key_against_a_new_address(client, operator, cast, simulator):
    connection = ConnectionFactory(
        team=cast.team, base_url=simulator.base_url, api_key="test-key", label="Shared"
    )
    url = reverse("admin:sessions_app_julesconnection_change", args=[connection.pk])
    moved = client.post(
        url, _connection_form(cast.team, "http://127.0.0.1:9/v1alpha", "", "Shared")
    )
    assert moved.status_code == 200 and "Could not reach Jules" in moved.content.decode()
    connection.refresh_from_db()
    assert connection.base_url == simulator.base_url


def test_it_audits_disabling_and_editing_a_connection(client, operator, cast):
    connection = ConnectionFactory(team=cast.team, label="Shared", sync_status="ok")
    url = reverse("admin:sessions_app_julesconnection_change", args=[connection.pk])
    response = client.post(
        url, _connection_form(cast.team, connection.base_url, label="Shared", enabled=False)
    )
    assert response.status_code == 302
    connection.refresh_from_db()
    assert not connection.enabled and connection.sync_status == "disabled"
    client.post(
        url, _connection_form(cast.team, connection.base_url, label="Renamed", enabled=False)
    )
    entries = list(
        AuditEntry.objects.exclude(action__startswith="auth.")
        .order_by("seq")
        .values_list("action", "details")
    )
    assert entries == [
        ("connection.disable", {"label": "Shared"}),
        ("connection.change", {"label": "Renamed", "changed": ["label"]}),
    ]


def test_it_audits_policy_and_membership_changes_made_in_the_admin(client, operator, cast):
    newcomer = UserFactory(username="newcomer")
    viewer = Membership.objects.get(team=cast.team, user=cast.viewer)
    member = Membership.objects.get(team=cast.team, user=cast.member)
    others = list(Membership.objects.filter(team=cast.team).exclude(pk__in=[viewer.pk, member.pk]))
    rows = [
        (viewer.pk, cast.viewer.pk, "approver", False),
        (member.pk, cast.member.pk, "member", True),
        *((m.pk, m.user_id, m.role, False) for m in others),
    ]
    data = {
        "name": "Acme",
        "slug": "acme",
        "require_plan_approval": "on",
        "forbid_self_approval": "on",
        "memberships-TOTAL_FORMS": str(len(rows) + 1),
        "memberships-INITIAL_FORMS": str(len(rows)),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for index, (pk, user_id, role, delete) in enumerate(rows):
        data[f"memberships-{index}-id"] = str(pk)
        data[f"memberships-{index}-team"] = str(cast.team.pk)
        data[f"memberships-{index}-user"] = str(user_id)
        data[f"memberships-{index}-role"] = role
        if delete:
            data[f"memberships-{index}-DELETE"] = "on"
    new = len(rows)
    data[f"memberships-{new}-team"] = str(cast.team.pk)
    data[f"memberships-{new}-user"] = str(newcomer.pk)
    data[f"memberships-{new}-role"] = "viewer"
    response = client.post(reverse("admin:sessions_app_team_change", args=[cast.team.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Team.objects.get(pk=cast.team.pk).forbid_self_approval
    entries = dict(
        AuditEntry.objects.filter(actor=operator)
        .exclude(action__startswith="auth.")
        .values_list("action", "details")
    )
    assert entries == {
        "policy.change": {
            "before": {"require_plan_approval": True, "forbid_self_approval": False},
            "after": {"require_plan_approval": True, "forbid_self_approval": True},
        },
        "member.add": {"username": "newcomer", "role": "viewer"},
        "member.role_change": {"username": "viewer", "from": "viewer", "to": "approver"},
        "member.remove": {"username": "member", "role": "member"},
    }
    assert AuditEntry.objects.filter(actor=operator).exclude(action="auth.sign_in").count() == 4


def test_it_audits_a_connection_deleted_in_the_admin(client, operator, cast):
    connection = ConnectionFactory(team=cast.team, label="Old account")
    response = client.post(
        reverse("admin:sessions_app_julesconnection_delete", args=[connection.pk]),
        {"post": "yes"},
    )
    assert response.status_code == 302
    assert not JulesConnection.objects.exists()
    entry = AuditEntry.objects.get(action="connection.delete")
    assert entry.target_id == str(connection.pk) and entry.details["label"] == "Old account"


def test_it_keeps_audit_entries_read_only(client, operator, cast):
    from sessions_app.audit import chain as audit

    entry = audit.record("session.message", actor=cast.member, team=cast.team)
    change = client.post(
        reverse("admin:sessions_app_auditentry_change", args=[entry.pk]), {"action": "x"}
    )
    assert change.status_code == 403
    delete = client.post(
        reverse("admin:sessions_app_auditentry_delete", args=[entry.pk]), {"post": "yes"}
    )
    assert delete.status_code == 403
    bulk = client.post(
        reverse("admin:sessions_app_auditentry_changelist"),
        {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"},
    )
    assert bulk.status_code in {200, 302, 403}
    assert AuditEntry.objects.get(pk=entry.pk).action == "session.message"
    assert client.get(reverse("admin:sessions_app_auditentry_add")).status_code == 403


def test_it_shows_outbox_actions_read_only(client, operator, cast):
    from sessions_app.sessions import services

    action = services.session_launch(
        user=cast.member, connection=ConnectionFactory(team=cast.team), prompt="x"
    )
    listing = client.get(reverse("admin:sessions_app_outboxaction_changelist"))
    assert listing.status_code == 200 and "Launch" in listing.content.decode()
    change = client.post(
        reverse("admin:sessions_app_outboxaction_change", args=[action.pk]), {"status": "done"}
    )
    assert change.status_code == 403
    assert client.get(reverse("admin:sessions_app_outboxaction_add")).status_code == 403


def _team_form(team, rows, extra=()):
    """The team change form with its membership rows: (pk, user_id, role, delete)."""
    rows = [*rows, *extra]
    data = {
        "name": team.name,
        "slug": team.slug,
        "require_plan_approval": "on" if team.require_plan_approval else "",
        "memberships-TOTAL_FORMS": str(len(rows)),
        "memberships-INITIAL_FORMS": str(sum(1 for r in rows if r[0])),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for index, (pk, user_id, role, delete) in enumerate(rows):
        if pk:
            data[f"memberships-{index}-id"] = str(pk)
        data[f"memberships-{index}-team"] = str(team.pk)
        data[f"memberships-{index}-user"] = str(user_id)
        data[f"memberships-{index}-role"] = role
        if delete:
            data[f"memberships-{index}-DELETE"] = "on"
    return data


def _rows(team, change=None):
    change = change or {}
    return [
        (m.pk, m.user_id, *change.get(m.user.username, (m.role, False)))
        for m in Membership.objects.filter(team=team).select_related("user")
    ]


@pytest.mark.parametrize("how", ["demote", "remove"])
def test_it_cannot_leave_a_team_without_an_admin(client, operator, cast, how):
    url = reverse("admin:sessions_app_team_change", args=[cast.team.pk])
    change = {"admin": ("member", False) if how == "demote" else ("admin", True)}
    response = client.post(url, _team_form(cast.team, _rows(cast.team, change)))
    assert response.status_code == 200
    assert "A team needs at least one admin" in response.content.decode()
    assert Membership.objects.get(team=cast.team, user=cast.admin).role == "admin"
    assert not AuditEntry.objects.filter(action__startswith="member.").exists()


def test_it_lets_the_last_admin_go_once_another_is_promoted_in_the_same_save(
    client, operator, cast
):
    url = reverse("admin:sessions_app_team_change", args=[cast.team.pk])
    change = {"admin": ("admin", True), "approver": ("admin", False)}
    response = client.post(url, _team_form(cast.team, _rows(cast.team, change)))
    assert response.status_code == 302, response.content.decode()[:2000]
    admins = Membership.objects.filter(team=cast.team, role="admin")
    assert [m.user.username for m in admins] == ["approver"]
    actions = list(
        AuditEntry.objects.filter(action__startswith="member.")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == ["member.role_change", "member.remove"]


def test_a_new_team_needs_an_admin(client, operator):
    member = UserFactory(username="someone")
    data = {
        "name": "Initech",
        "slug": "initech",
        "require_plan_approval": "on",
        "memberships-TOTAL_FORMS": "1",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
        "memberships-0-user": str(member.pk),
        "memberships-0-role": "member",
    }
    response = client.post(reverse("admin:sessions_app_team_add"), data)
    assert response.status_code == 200
    assert not Team.objects.filter(slug="initech").exists()
    data["memberships-0-role"] = "admin"
    response = client.post(reverse("admin:sessions_app_team_add"), data)
    assert response.status_code == 302
    team = Team.objects.get(slug="initech")
    assert list(
        AuditEntry.objects.filter(team=team).order_by("seq").values_list("action", flat=True)
    ) == ["team.create", "member.add"]


def _audit_trail(connection):
    return list(
        AuditEntry.objects.filter(target_type="connection", target_id=str(connection.pk))
        .order_by("seq")
        .values_list("action", "details")
    )


def test_a_connection_changed_in_the_admin_is_audited_and_reset_as_on_the_team_page(
    client, operator, cast, simulator
):
    """The same rotation and disabling, once on the team pages and once in the admin."""
    from sessions_app.models.jules import SyncStatus

    results = {}
    for where in ("team page", "admin"):
        connection = ConnectionFactory(
            team=cast.team,
            base_url=simulator.base_url,
            api_key="test-key",
            label=f"Shared {where}",
            sync_status=SyncStatus.BROKEN,
            last_error="Jules rejected the key",
            consecutive_failures=4,
        )
        if where == "team page":
            client.force_login(cast.admin)
            client.post(
                reverse("sessions_app:connection-rotate", args=[connection.pk]),
                {"api_key": "other-key"},
            )
            client.post(
                reverse("sessions_app:connection-enabled", args=[connection.pk]),
                {"enabled": "0"},
            )
            client.force_login(operator)
        else:
            url = reverse("admin:sessions_app_julesconnection_change", args=[connection.pk])
            form = _connection_form(cast.team, simulator.base_url, "other-key", connection.label)
            assert client.post(url, form).status_code == 302
            form = _connection_form(
                cast.team, simulator.base_url, "", connection.label, enabled=False
            )
            assert client.post(url, form).status_code == 302
        connection.refresh_from_db()
        results[where] = (
            connection.get_api_key(),
            connection.sync_status,
            connection.last_error,
            connection.consecutive_failures,
            [
                (a, {k: v for k, v in d.items() if k != "label"})
                for a, d in _audit_trail(connection)
            ],
        )
        # One account per team: the next round adds the same key again.
        JulesConnection.objects.filter(pk=connection.pk).delete()
    assert results["admin"] == results["team page"]
    assert results["admin"][1] == "disabled" and results["admin"][3] == 0
    assert [a for a, _ in results["admin"][4]] == ["connection.rotate", "connection.disable"]


def test_a_connection_cannot_move_to_another_team_in_the_admin(client, operator, cast):
    connection = ConnectionFactory(team=cast.team, label="Shared")
    url = reverse("admin:sessions_app_julesconnection_change", args=[connection.pk])
    response = client.post(
        url, _connection_form(cast.other_team, connection.base_url, label="Shared")
    )
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.team_id == cast.team.pk
