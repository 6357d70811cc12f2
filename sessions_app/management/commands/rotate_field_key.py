"""Re-encrypt every stored API key with the first key of FIELD_ENCRYPTION_KEY."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from sessions_app.connections import crypto
from sessions_app.models import JulesConnection


class Command(BaseCommand):
    help = "Re-encrypt stored API keys with the current first FIELD_ENCRYPTION_KEY."

    def handle(self, *args: Any, **options: Any) -> None:
        rotated = 0
        with transaction.atomic():
            for connection in JulesConnection.objects.select_for_update():
                try:
                    connection.api_key_encrypted = crypto.rotate(connection.api_key_encrypted)
                except crypto.DecryptionError as exc:
                    raise CommandError(
                        f"Connection {connection.pk} ({connection.label}): {exc}"
                    ) from exc
                connection.save(update_fields=["api_key_encrypted"])
                rotated += 1
        self.stdout.write(self.style.SUCCESS(f"{rotated} API keys re-encrypted."))
