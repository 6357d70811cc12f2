"""Check the audit history's hash chain and name the first broken entry."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from sessions_app.audit.chain import verify_chain


class Command(BaseCommand):
    help = "Verify the audit history's hash chain."

    def handle(self, *args: Any, **options: Any) -> None:
        checked, broken = verify_chain()
        if broken is not None:
            raise CommandError(
                f"The audit chain is broken at entry #{broken.seq}: {broken.reason} "
                f"({checked} entries before it verified)."
            )
        self.stdout.write(
            self.style.SUCCESS(f"{checked} audit entries verified; the chain is intact.")
        )
