"""The admin: connections take a write-only key; audit entries cannot be changed."""

from __future__ import annotations

import pytest
from django.urls import reverse

from sessions_app.models import AuditEntry, JulesConnection
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    user = UserFactory(username="operator", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def test_it_adds_a_connection_with_an_encrypted_write_only_key(client, operator, cast):
    response = client.post(
        reverse("admin:sessions_app_julesconnection_add"),
        {
            "team": cast.team.pk,
            "label": "Alice's Jules",
            "base_url": "http://127.0.0.1:9/v1alpha",
            "enabled": "on",
            "api_key": "sk-admin-added-123",
        },
    )
    assert response.status_code == 302
    connection = JulesConnection.objects.get(label="Alice's Jules")
    assert connection.get_api_key() == "sk-admin-added-123"
    assert "sk-admin-added-123" not in connection.api_key_encrypted
    page = client.get(reverse("admin:sessions_app_julesconnection_change", args=[connection.pk]))
    assert b"sk-admin-added-123" not in page.content
    assert AuditEntry.objects.filter(action="connection.add", target_id=str(connection.pk)).exists()


def test_it_keeps_audit_entries_read_only(client, operator, cast):
    from sessions_app import audit

    entry = audit.record("session.message", actor=cast.member, team=cast.team)
    change = client.post(
        reverse("admin:sessions_app_auditentry_change", args=[entry.pk]), {"action": "x"}
    )
    assert change.status_code == 403
    delete = client.post(
        reverse("admin:sessions_app_auditentry_delete", args=[entry.pk]), {"post": "yes"}
    )
    assert delete.status_code == 403
    assert AuditEntry.objects.get(pk=entry.pk).action == "session.message"


def test_it_shows_outbox_actions_read_only(client, operator, cast):
    from sessions_app import services
    from tests.factories import ConnectionFactory

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
