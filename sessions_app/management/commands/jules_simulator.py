"""Run the Jules API simulator on loopback: `python manage.py jules_simulator --port 8765`.

The scenario tags, fault SPEC grammar and admin API are documented in
`jules_simulator/__init__.py`, `faults.py` and `admin.py`.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jules_simulator import SimulatorConfig, start_simulator


class Command(BaseCommand):
    help = "Play the Jules REST API (v1alpha) on loopback for development, tests and benchmarks."
    # The simulator needs no database and no app checks; it must start on a bare checkout.
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument(
            "--api-key",
            action="append",
            dest="api_keys",
            default=None,
            help="A key with its own account (repeatable; default sim-demo-key).",
        )
        parser.add_argument(
            "--speed",
            type=float,
            default=1.0,
            help="Virtual seconds per real second (60 = a virtual minute a second).",
        )
        parser.add_argument(
            "--manual-clock",
            action="store_true",
            help="Move the clock only through POST /_sim/clock/advance.",
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--seed-sessions", type=int, default=0)
        parser.add_argument("--activities-per-session", type=int, default=10)
        parser.add_argument("--seed-days", type=float, default=30.0)
        parser.add_argument("--demo", action="store_true", help="Seed the demo sessions.")
        parser.add_argument(
            "--tier", choices=["free", "pro", "ultra"], help="Quota tier of every account."
        )
        parser.add_argument(
            "--parallel-create-limit",
            type=int,
            help="Creates beyond this many in flight fail with 404 (off by default).",
        )
        parser.add_argument(
            "--scenario", default="happy", help="Default scenario, in the tag grammar."
        )
        parser.add_argument(
            "--faults", action="append", default=[], help="A fault rule SPEC (repeatable)."
        )
        parser.add_argument(
            "--snapshot", help="A JSON file: loaded at start when it exists, written at stop."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        keys = options["api_keys"] or ["sim-demo-key"]
        config = SimulatorConfig(
            default_scenario=options["scenario"],
            tier=options["tier"],
            parallel_create_limit=options["parallel_create_limit"],
            seed_days=options["seed_days"],
            snapshot_path=options["snapshot"],
        )
        try:
            sim = start_simulator(
                host=options["host"],
                port=options["port"],
                api_keys=keys,
                speed=options["speed"],
                manual_clock=options["manual_clock"],
                seed=options["seed"],
                seed_sessions=options["seed_sessions"],
                activities_per_session=options["activities_per_session"],
                demo=options["demo"],
                faults=options["faults"],
                config=config,
            )
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Jules simulator on {sim.base_url} (admin {sim.admin_url}) with "
            f"{len(keys)} account(s). Ctrl-C stops."
        )
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        stop.wait()
        sim.stop()
        if options["snapshot"]:
            self.stdout.write(f"Snapshot written to {options['snapshot']}.")
