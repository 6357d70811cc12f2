"""Fill or repair the analytics rollup for sessions cached before it existed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions_app.analytics.rollup import CHUNK, refresh_facts
from sessions_app.models import Session, Team


class Command(BaseCommand):
    help = "Compute the analytics rollup (SessionFacts) of every cached session, or one team's."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--team", help="the slug of one team; every team when absent")

    def handle(self, *args: Any, **options: Any) -> None:
        sessions = Session.objects.order_by("pk")
        if options.get("team"):
            team = Team.objects.filter(slug=options["team"]).first()
            if team is None:
                raise CommandError(f"No team with the slug {options['team']!r}.")
            sessions = sessions.filter(team=team)
        seen = written = 0
        last = 0
        # Keyset pages by id, each refreshed in its own transaction, so a large cache is
        # filled in steps that never hold locks for long and resume where they stopped.
        while ids := list(sessions.filter(pk__gt=last).values_list("pk", flat=True)[:CHUNK]):
            written += refresh_facts(ids)
            seen += len(ids)
            last = ids[-1]
        if options["verbosity"]:
            self.stdout.write(
                self.style.SUCCESS(f"{seen} sessions read; {written} rollup rows written.")
            )
