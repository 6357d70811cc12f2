"""Rebuild every search document from the cache (docs/search.md#rebuilding)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from sessions_app.models import Session, SessionSearchDocument
from sessions_app.search.documents import BATCH, index_sessions


class Command(BaseCommand):
    help = "Rebuild the search documents of every cached session (or of one team)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--team", type=int, help="Only this team's sessions (its id).")
        parser.add_argument(
            "--force", action="store_true", help="Rewrite documents whose content is unchanged."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        sessions = Session.objects.order_by("pk")
        if options["team"] is not None:
            sessions = sessions.filter(team_id=options["team"])
        started = time.perf_counter()
        written = seen = 0
        last = 0
        while True:
            # Batches by id, each in its own transaction, so a long rebuild holds no lock
            # for long and can be interrupted.
            ids = list(sessions.filter(pk__gt=last).values_list("pk", flat=True)[:BATCH])
            if not ids:
                break
            with transaction.atomic():
                written += index_sessions(ids, force=options["force"])
            seen += len(ids)
            last = ids[-1]
        # Documents whose session is gone go with it (a cascade), so none are left over.
        total = SessionSearchDocument.objects.count()
        self.stdout.write(
            f"Indexed {seen} sessions: {written} documents written, {total} in the index, "
            f"in {time.perf_counter() - started:.1f} s."
        )
