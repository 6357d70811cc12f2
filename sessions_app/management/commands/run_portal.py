"""`make run`: the portal, its workers and the Jules simulator, kept running and stopped together."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions_app.runtime.demo import ensure_demo
from sessions_app.runtime.supervisor import Supervisor

DEMO_SIM_KEY = "sim-demo-key"
SNAPSHOT_SECONDS = 30.0


class Command(BaseCommand):
    help = "Migrate, set up the demo login, and run the web server, worker, beat and simulator."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument(
            "--sim-port", type=int, default=int(os.environ.get("JULES_SIM_PORT", "8765"))
        )
        parser.add_argument(
            "--sim-speed",
            type=float,
            default=float(os.environ.get("JULES_SIM_SPEED", "10")),
            help="How much faster the demo simulator's sessions progress than live ones.",
        )
        parser.add_argument("--web-workers", type=int, default=2)

    def handle(self, *args: Any, **options: Any) -> None:
        supervisor = Supervisor(log=lambda line: self.stderr.write(f"run_portal: {line}"))
        call_command("migrate", interactive=False, verbosity=0)
        simulator = None
        if settings.JULES_API_KEY:
            base_url, api_key = settings.JULES_API_BASE_URL, settings.JULES_API_KEY
            self.stdout.write(f"Using the Jules API at {base_url} with JULES_API_KEY.")
        else:
            try:
                from jules_simulator import SimulatorConfig, start_simulator
            except ImportError:
                raise CommandError(
                    "Set JULES_API_KEY: the Jules simulator, the demo's stand-in, is not "
                    "installed here (the production image leaves it out)."
                ) from None

            # The simulator keeps its world across restarts, so a second run never hands
            # out again the ids of sessions the portal's database already holds.
            snapshot = Path(settings.DATA_DIR) / "simulator.json"
            simulator = start_simulator(
                host="127.0.0.1",
                port=options["sim_port"],
                api_keys=[DEMO_SIM_KEY],
                demo=True,
                speed=options["sim_speed"],
                seed=1,
                config=SimulatorConfig(snapshot_path=str(snapshot)),
                snapshot_seconds=SNAPSHOT_SECONDS,
            )
            base_url, api_key = simulator.base_url, DEMO_SIM_KEY
            # The simulator is this run's Jules: the web server and the workers inherit it
            # as the operator's address, so the demo key also works from the team page.
            os.environ["JULES_API_BASE_URL"] = base_url
            self.stdout.write(f"Jules simulator on {base_url} (speed x{options['sim_speed']:g}).")
        login = ensure_demo(base_url, api_key)

        python = sys.executable
        celery = [python, "-m", "celery", "-A", "julesweb"]
        # One worker per queue, so that a long sync never holds the slot an approval needs.
        for queue, concurrency in (("sync", 2), ("actions", 1)):
            supervisor.spawn(
                f"the {queue} worker",
                [
                    *celery,
                    "worker",
                    "-Q",
                    queue,
                    "-c",
                    str(concurrency),
                    "--loglevel",
                    "INFO",
                    "-n",
                    f"{queue}@%h",
                ],
            )
        supervisor.spawn(
            "beat",
            [
                *celery,
                "beat",
                "--loglevel",
                "INFO",
                "-s",
                str(settings.CELERY_BEAT_SCHEDULE_FILENAME),
            ],
        )
        supervisor.spawn(
            "the web server",
            [
                python,
                "-m",
                "gunicorn",
                "julesweb.wsgi:application",
                "--bind",
                f"{options['host']}:{options['port']}",
                "--workers",
                str(options["web_workers"]),
                "--threads",
                "4",
                "--access-logfile",
                "-",
                "--graceful-timeout",
                "5",
            ],
        )
        from sessions_app import tasks

        # The demo connection syncs at once rather than at the scheduler's next tick.
        tasks.sync_connection.delay(login.connection_id, full=True)

        url = f"http://{options['host']}:{options['port']}/"
        self.stdout.write(
            self.style.SUCCESS(
                f"\nJules team portal: {url}\n"
                f"Sign in as '{login.username}' with password '{login.password}'.\n"
                "Press Ctrl-C to stop everything.\n"
            )
        )
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: supervisor.request_stop())
        try:
            # A worker, beat or the web server that dies is restarted (with a line in the
            # log and a backoff); only Ctrl-C or SIGTERM stops the portal.
            supervisor.run()
        finally:
            supervisor.stop()
            if simulator is not None:
                simulator.stop()
            self.stdout.write(f"Stopped ({supervisor.restarts} restart(s) while running).")
