"""End every signed-in session of the portal (docs/sign-in.md, "Signing everyone out")."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from sessions_app.audit import chain as audit
from sessions_app.audit.actions import AuditAction


class Command(BaseCommand):
    help = "Sign everyone out: every browser session ends; API tokens are not touched."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.SESSION_ENGINE != "django.contrib.sessions.backends.db":
            raise CommandError(
                f"Sessions live in {settings.SESSION_ENGINE}, which this command cannot list."
            )
        with transaction.atomic():
            count, _ = Session.objects.all().delete()
            audit.record(
                AuditAction.AUTH_SIGN_OUT_ALL,
                actor_label="operator (manage.py sign_everyone_out)",
                details={"sessions": count},
            )
        self.stdout.write(self.style.SUCCESS(f"{count} sessions ended; everyone signs in again."))
