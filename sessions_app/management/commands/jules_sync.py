"""Run the sync without Celery, with a progress bar and a summary."""

from __future__ import annotations

import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from julesweb.celery import apply_worker_settings
from sessions_app import sync
from sessions_app.models import JulesConnection


class Command(BaseCommand):
    help = "Sync Jules connections now: sessions, activities and sources."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--connection", type=int, help="Only this connection's id.")
        parser.add_argument(
            "--full", action="store_true", help="Re-list every session, archived included."
        )
        parser.add_argument("--workers", type=int, default=None, help="Requests in flight.")

    def handle(self, *args: Any, **options: Any) -> None:
        connections = JulesConnection.objects.filter(enabled=True).order_by("pk")
        if options["connection"] is not None:
            connections = connections.filter(pk=options["connection"])
            if not connections.exists():
                raise CommandError(f"No enabled connection with id {options['connection']}.")
        # This command does a worker's job, with a worker's settings.
        apply_worker_settings()
        failed = False
        for connection in connections:
            self.stdout.write(f"Connection {connection.pk}: {connection.label} ({connection.team})")
            started = time.monotonic()
            report = sync.sync_connection(
                connection.pk,
                full=options["full"],
                progress=self._progress_bar,
                workers=options["workers"],
            )
            self._end_bar()
            if report.skipped:
                self.stdout.write("  skipped: another worker is syncing this connection now")
                continue
            elapsed = time.monotonic() - started
            self.stdout.write(f"  {report.summary()} in {elapsed:.1f}s")
            for error in report.errors[:20]:
                self.stdout.write(self.style.WARNING(f"  error: {error}"))
            failed = failed or bool(report.errors)
        if failed:
            raise CommandError("Some connections or sessions could not be synced; see above.")

    def _progress_bar(self, phase: str, done: int, total: int) -> None:
        if not sys.stderr.isatty() and total and done < total:
            return
        width = 30
        if total:
            filled = int(width * done / total)
            bar = "#" * filled + "-" * (width - filled)
            line = f"\r  {phase:<10} [{bar}] {done}/{total}"
        else:
            line = f"\r  {phase:<10} {done} read"
        sys.stderr.write(line.ljust(60))
        sys.stderr.flush()

    def _end_bar(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()
