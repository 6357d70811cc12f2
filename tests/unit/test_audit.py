"""The audit chain: append-only through the ORM, and tamper-evident behind its back."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from sessions_app import audit, crypto
from sessions_app.models import AuditEntry, JulesConnection
from sessions_app.models.audit import AppendOnlyError
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db


def _entries(cast, n=5):
    for index in range(n):
        audit.record("session.message", actor=cast.member, team=cast.team, details={"n": index})


def test_it_refuses_updates_and_deletes_through_the_orm(cast):
    _entries(cast, 1)
    entry = AuditEntry.objects.get()
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(pk=entry.pk).update(action="x")
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.all().delete()


def test_it_verifies_an_intact_chain(cast, capsys):
    _entries(cast)
    call_command("audit_verify")
    assert "5 audit entries verified" in capsys.readouterr().out


def test_it_names_the_first_entry_edited_in_the_database(cast):
    _entries(cast)
    third = AuditEntry.objects.get(seq=3)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE sessions_app_auditentry SET details = %s WHERE id = %s", ['{"n": 99}', third.pk]
        )
    with pytest.raises(CommandError, match="entry #3"):
        call_command("audit_verify")


def test_it_notices_a_deleted_entry(cast):
    _entries(cast)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM sessions_app_auditentry WHERE seq = 2")
    with pytest.raises(CommandError, match="#2"):
        call_command("audit_verify")


def test_it_records_sign_in_and_failed_sign_in(client, cast):
    from django.urls import reverse

    from tests.factories import DEFAULT_PASSWORD

    client.post(reverse("login"), {"username": "member", "password": "wrong"})
    client.post(reverse("login"), {"username": "member", "password": DEFAULT_PASSWORD})
    actions = list(AuditEntry.objects.order_by("seq").values_list("action", flat=True))
    assert actions == ["auth.sign_in_failed", "auth.sign_in"]
    assert "wrong" not in str(AuditEntry.objects.first().details)


def test_it_rotates_the_field_key(cast, settings, capsys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    ConnectionFactory(team=cast.team, api_key="jules-secret")
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_field_key")
    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert JulesConnection.objects.get().get_api_key() == "jules-secret"
    assert crypto.decrypt(JulesConnection.objects.get().api_key_encrypted) == "jules-secret"
