"""Run the Jules API simulator on loopback: `python manage.py jules_simulator --port 8765`."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from sessions_app.jules.simulator import start_simulator


class Command(BaseCommand):
    help = "Play the Jules REST API (v1alpha) on loopback for development and tests."
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--api-key", action="append", dest="api_keys", default=None)
        parser.add_argument("--speed", type=float, default=1.0)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--seed-sessions", type=int, default=0)
        parser.add_argument("--activities-per-session", type=int, default=10)
        parser.add_argument("--demo", action="store_true", help="Seed the demo sessions.")
        parser.add_argument("--faults", action="append", default=[], help="A fault rule SPEC.")

    def handle(self, *args: Any, **options: Any) -> None:
        keys = options["api_keys"] or ["sim-demo-key"]
        sim = start_simulator(
            host=options["host"],
            port=options["port"],
            api_keys=keys,
            speed=options["speed"],
            seed=options["seed"],
            seed_sessions=options["seed_sessions"],
            activities_per_session=options["activities_per_session"],
            demo=options["demo"],
            faults=options["faults"],
        )
        self.stdout.write(
            f"Jules simulator on {sim.base_url} with {len(keys)} key(s). Ctrl-C stops."
        )
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        stop.wait()
        sim.stop()
