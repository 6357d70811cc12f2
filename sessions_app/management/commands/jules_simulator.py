"""`python manage.py jules_simulator`: the same program as `python -m jules_simulator`.

jules_simulator/README.md documents its options, scenarios, fault grammar and admin API.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

try:
    from jules_simulator import __main__ as simulator
except ImportError:  # The production image leaves the simulator out (docs/operations.md).
    simulator = None  # type: ignore[assignment]


class Command(BaseCommand):
    help = "Play the Jules REST API (v1alpha) on loopback for development, tests and benchmarks."
    # The simulator needs no database and no app checks; it must start on a bare checkout.
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        if simulator is not None:
            simulator.add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        if simulator is None:
            raise CommandError("The Jules simulator is not installed here (a production image).")
        try:
            simulator.run(argparse.Namespace(**options), write=self.stdout.write)
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
