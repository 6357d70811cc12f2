"""`make run`: the portal, its workers and the Jules simulator, stopped together by Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from sessions_app.runtime.demo import ensure_demo
from sessions_app.runtime.processes import signal_group

DEMO_SIM_KEY = "sim-demo-key"


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
            help="Simulated seconds per real second for the demo simulator.",
        )
        parser.add_argument("--web-workers", type=int, default=2)

    def handle(self, *args: Any, **options: Any) -> None:
        self.children: list[subprocess.Popen[bytes]] = []
        self.stopping = threading.Event()
        call_command("migrate", interactive=False, verbosity=0)
        simulator = None
        if settings.JULES_API_KEY:
            base_url, api_key = settings.JULES_API_BASE_URL, settings.JULES_API_KEY
            self.stdout.write(f"Using the Jules API at {base_url} with JULES_API_KEY.")
        else:
            from jules_simulator import start_simulator

            simulator = start_simulator(
                host="127.0.0.1",
                port=options["sim_port"],
                api_keys=[DEMO_SIM_KEY],
                demo=True,
                speed=options["sim_speed"],
                seed=1,
            )
            base_url, api_key = simulator.base_url, DEMO_SIM_KEY
            # The simulator is this run's Jules: the web server and the workers inherit it
            # as the operator's address, so the demo key also works from the team page.
            os.environ["JULES_API_BASE_URL"] = base_url
            self.stdout.write(f"Jules simulator on {base_url} (speed x{options['sim_speed']:g}).")
        login = ensure_demo(base_url, api_key)

        python = sys.executable
        # One worker per queue, so that a long sync never holds the slot an approval needs.
        for queue, concurrency in (("sync", 2), ("actions", 1)):
            self._spawn(
                [
                    python,
                    "-m",
                    "celery",
                    "-A",
                    "julesweb",
                    "worker",
                    "-Q",
                    queue,
                    "-c",
                    str(concurrency),
                    "--loglevel",
                    "INFO",
                    "-n",
                    f"{queue}@%h",
                ]
            )
        self._spawn(
            [
                python,
                "-m",
                "celery",
                "-A",
                "julesweb",
                "beat",
                "--loglevel",
                "INFO",
                "-s",
                str(settings.CELERY_BEAT_SCHEDULE_FILENAME),
            ]
        )
        self._spawn(
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
            ]
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
            signal.signal(signum, lambda *_: self.stopping.set())
        try:
            while not self.stopping.is_set():
                for child in self.children:
                    if child.poll() is not None:
                        self.stderr.write(f"A process stopped unexpectedly: {child.args!r}")
                        self.stopping.set()
                self.stopping.wait(1.0)
        finally:
            self._stop_all()
            if simulator is not None:
                simulator.stop()
            self.stdout.write("Stopped.")

    def _spawn(self, command: list[str]) -> None:
        # Each child leads its own process group, so that stopping it also stops the
        # processes it forked (Celery's pool, gunicorn's workers).
        self.children.append(subprocess.Popen(command, start_new_session=True))  # noqa: S603

    def _stop_all(self) -> None:
        # The leaders first: Celery and gunicorn stop their own pools and workers cleanly
        # (a pool process signalled directly is reported as a crash); whatever is still
        # running after the deadline is killed with its whole group.
        for child in self.children:
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in self.children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                signal_group(child, signal.SIGKILL)
                child.wait()
        # Workers' own children (a pool process that outlived its parent) share the group.
        for child in self.children:
            signal_group(child, signal.SIGKILL, only_if_running=False)
