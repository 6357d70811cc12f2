"""Run the schedules that are due, as beat's `run-due-schedules` tick does, once.

`--at` plays the tick at another moment (a rehearsal, a test driving the clock); slots are
still claimed one row each, so this never doubles a run that beat made (docs/templates.md).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from sessions_app.launch_templates.schedules import run_due_schedules


class Command(BaseCommand):
    help = "Run every schedule whose next slot has come (once), and list the runs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--at", help="Tick as if it were this ISO 8601 time (default: now; UTC if no offset)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        if options["at"]:
            try:
                now = dt.datetime.fromisoformat(options["at"])
            except ValueError as exc:
                raise CommandError(f"--at: {options['at']!r} is not an ISO 8601 time.") from exc
            if timezone.is_naive(now):
                now = now.replace(tzinfo=dt.UTC)
        runs = run_due_schedules(now=now)
        for run in runs:
            self.stdout.write(
                f"{run.schedule.name} {run.slot:%Y-%m-%d %H:%M} UTC: "
                f"{run.get_status_display()}. {run.reason}"
            )
        self.stdout.write(f"{len(runs)} run(s) at {now.isoformat()}.")
