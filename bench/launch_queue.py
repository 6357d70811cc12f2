"""The launch queue under load: N launches across several Jules accounts with caps.

    python -m bench.launch_queue [--launches 200] [--connections 3] [--daily 100]
                                 [--concurrent 15] [--speed 40] [--workers 4]
                                 [--caps tier|learn] [--members 3] [--timeout 600]

Needs PostgreSQL (BENCH_QUEUE_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/jules_bench_queue); the row lock of the gate is what
is measured, so SQLite will not do.

The simulator runs in a thread at `--speed` times the wall clock, one account per
connection, each with the daily and concurrent caps and a parallel-create limit of 3 (its
"Could not get source" fault). `--members` people of one team launch in turn, each launch
allowed on any of the team's connections. The portal runs as in production minus Celery:
`deliver_action` tasks go to `--workers` threads that call the outbox's `deliver` (a
countdown becomes a timer), the outbox sweep runs every 5 s and the queue's tick every 2 s (as beat runs them), and each connection is synced
every second (`SYNC_ACTIVE_SECONDS=1`), so the portal sees sessions end about a second
after they do. With `--caps tier` the portal knows the caps (the "pro" tier, or custom
numbers when they differ); with `learn` it starts knowing none and learns from refusals.

It reports, from the simulator's own counts (`/_sim/quotas`): the peak of sessions busy at
once, of creates in 24 h and of creates in flight per account, the creates refused over a
cap and the parallel-create failures; from the portal: launches started, failed, and the
times to drain the queue (the last launch started) and to finish (every session done).
The ideal that the caps allow uses the mean run time D of the sessions (wall seconds) and
C = connections x concurrent: the last launch can start once N - C sessions have ended,
(N - C) x D / C, and all end at best N x D / C. Exit status 1 when a launch failed, a cap
was exceeded or the run timed out. docs/performance.md, "Launch queue".
"""

from __future__ import annotations

import argparse
import os
import queue
import statistics
import sys
import threading
import time
from typing import Any
from unittest import mock

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/jules_bench_queue"
PARALLEL_LIMIT = 3
TERMINAL = {"COMPLETED", "FAILED"}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--launches", type=int, default=200)
    parser.add_argument("--connections", type=int, default=3)
    parser.add_argument("--daily", type=int, default=100)
    parser.add_argument("--concurrent", type=int, default=15)
    parser.add_argument("--speed", type=float, default=40.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--caps", choices=["tier", "learn"], default="tier")
    parser.add_argument("--timeout", type=float, default=600.0)
    return parser.parse_args(argv)


class FakeCelery:
    """`deliver_action` tasks on worker threads; every other task is dropped (the sync
    loop and the sweep of this benchmark do their work)."""

    def __init__(self, workers: int) -> None:
        self.work: queue.Queue[str | None] = queue.Queue()
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, name=f"deliver-{i}", daemon=True)
            for i in range(workers)
        ]
        self.delivered = 0

    def apply_async(self, task: Any, args: Any = None, kwargs: Any = None, **options: Any) -> None:
        if task.name != "sessions_app.tasks.deliver_action":
            return
        action_id = str(args[0] if args else (kwargs or {})["action_id"])
        countdown = float(options.get("countdown") or 0)
        if countdown > 0:
            timer = threading.Timer(countdown, self.work.put, (action_id,))
            timer.daemon = True
            timer.start()
        else:
            self.work.put(action_id)

    def _run(self) -> None:
        from django.db import connection

        from sessions_app.outbox.delivery import deliver

        while not self.stopping.is_set():
            try:
                action_id = self.work.get(timeout=0.5)
            except queue.Empty:
                continue
            if action_id is None:
                break
            try:
                deliver(action_id)
                self.delivered += 1
            except Exception as exc:  # A bug: say so, and keep the other workers going.
                print(f"delivery of {action_id} raised {exc!r}", file=sys.stderr)
            finally:
                connection.close_if_unusable_or_obsolete()

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            if thread.is_alive():
                thread.join(timeout=10)


def loop(stopping: threading.Event, every: float, step: Any) -> threading.Thread:
    def run() -> None:
        from django.db import connection

        while not stopping.is_set():
            started = time.monotonic()
            try:
                step()
            except Exception as exc:
                print(f"{getattr(step, '__name__', step)} raised {exc!r}", file=sys.stderr)
            finally:
                connection.close_if_unusable_or_obsolete()
            stopping.wait(max(0.0, every - (time.monotonic() - started)))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    os.environ["SYNC_ACTIVE_SECONDS"] = "1"
    os.environ["SYNC_LIST_SECONDS"] = "5"
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "0"
    os.environ.setdefault("JULES_ALLOWED_BASE_URLS", "http://127.0.0.1:*/v1alpha")
    from bench.common import empty_tables, setup_django

    setup_django(os.environ.get("BENCH_QUEUE_DATABASE_URL", DEFAULT_URL))
    empty_tables()
    from django.contrib.auth import get_user_model
    from django.db import connection as db
    from django.db.models import Count

    from jules_simulator import AccountSpec, SimulatorConfig, start_simulator
    from sessions_app import sync
    from sessions_app.launch_queue import gate
    from sessions_app.models import (
        JulesConnection,
        LaunchTicket,
        Membership,
        OutboxAction,
        Session,
        Team,
    )
    from sessions_app.models.launch_queue import TIER_CAPS
    from sessions_app.outbox import delivery
    from sessions_app.sessions import services

    with db.cursor() as cursor:
        cursor.execute(
            "TRUNCATE sessions_app_launchticket, sessions_app_launchcaps, auth_user "
            "RESTART IDENTITY CASCADE"
        )
    keys = [f"bench-queue-{i}" for i in range(options.connections)]
    accounts = tuple(
        AccountSpec(
            id=f"account-{i}",
            keys=(key,),
            daily_cap=options.daily,
            concurrent_cap=options.concurrent,
            parallel_create_limit=PARALLEL_LIMIT,
        )
        for i, key in enumerate(keys)
    )
    sim = start_simulator(
        api_keys=(), speed=options.speed, config=SimulatorConfig(accounts=accounts)
    )
    fake = FakeCelery(options.workers)
    stopping = threading.Event()
    try:
        team = Team.objects.create(name="Bench", slug="bench", require_plan_approval=False)
        users = []
        for index in range(options.members):
            user = get_user_model().objects.create(username=f"launcher{index}")
            Membership.objects.create(team=team, user=user, role="member")
            users.append(user)
        connections = []
        for index, key in enumerate(keys):
            connection = JulesConnection(team=team, label=f"account {index}", base_url=sim.base_url)
            connection.set_api_key(key)
            connection.save()
            connections.append(connection)
            caps = gate.caps_for(connection.pk)
            if options.caps == "tier":
                tier = next(
                    (t for t, c in TIER_CAPS.items() if c == (options.daily, options.concurrent)),
                    "custom",
                )
                caps.tier = tier
                caps.daily_cap, caps.concurrent_cap = options.daily, options.concurrent
            caps.save()
            sync.sync_connection(connection.pk)  # its repositories
        sources = [
            set(connection.sources.values_list("name", flat=True)) for connection in connections
        ]
        source = sorted(set.intersection(*sources))[0]
        branch = connections[0].sources.get(name=source).default_branch

        with mock.patch(
            "celery.app.task.Task.apply_async",
            lambda task, args=None, kwargs=None, **o: fake.apply_async(task, args, kwargs, **o),
        ):
            fake.start()
            syncs = [
                loop(stopping, 1.0, lambda pk=c.pk: sync.sync_connection(pk)) for c in connections
            ]
            sweeper = loop(stopping, 5.0, delivery.sweep)
            ticker = loop(stopping, 2.0, gate.tick)
            started = time.monotonic()
            for index in range(options.launches):
                services.session_launch(
                    user=users[index % len(users)],
                    connection=connections[index % len(connections)],
                    prompt=f"Bench task {index}",
                    source_name=source,
                    starting_branch=branch,
                    require_plan_approval=False,
                    any_connection=True,
                )
            launched = time.monotonic() - started
            drained = finished = None
            deadline = started + options.timeout
            while time.monotonic() < deadline:
                open_ = LaunchTicket.objects.filter(
                    status__in=[LaunchTicket.Status.QUEUED, LaunchTicket.Status.CREATING]
                ).count()
                if open_ == 0 and drained is None:
                    drained = time.monotonic() - started
                states = sim.quotas()
                busy = sum(account["busy"] for account in states.values())
                if drained is not None and busy == 0:
                    finished = time.monotonic() - started
                    break
                time.sleep(0.25)
            stopping.set()
            for thread in [*syncs, sweeper, ticker]:
                thread.join(timeout=30)
            fake.stop()
        for connection in connections:
            sync.sync_connection(connection.pk, full=True)
        report = sim.quotas()
        tickets = dict(LaunchTicket.objects.values_list("status").annotate(n=Count("pk")))
        failed = OutboxAction.objects.filter(kind="launch", status="failed")
        runs = [
            # The simulator's `speed` divides the lifecycle's delays; its clock is the wall's.
            (s.update_time - s.create_time).total_seconds()
            for s in Session.objects.filter(state__in=TERMINAL)
            if s.create_time and s.update_time
        ]
        mean_run = statistics.mean(runs) if runs else float("nan")
        slots = options.connections * options.concurrent
        ideal_drain = max(0, options.launches - slots) * mean_run / slots
        ideal_finish = options.launches * mean_run / slots
        print(
            f"{options.launches} launches, {options.connections} connections capped at "
            f"{options.concurrent} at once and {options.daily} a day, speed {options.speed:g}, "
            f"caps {options.caps}, {options.workers} delivery workers, {options.members} members"
        )
        print(f"launch calls took {launched:.1f} s")
        print("account     peak busy  peak 24h  peak creates in flight  refused  parallel 404s")
        exceeded = False
        for name, account in sorted(report.items()):
            refused = account["refused_daily"] + account["refused_concurrent"]
            print(
                f"{name:<11} {account['peak_busy']:>9}  {account['peak_daily']:>8}  "
                f"{account['peak_inflight_creates']:>22}  {refused:>7}  "
                f"{account['parallel_create_failures']:>13}"
            )
            exceeded |= account["peak_busy"] > options.concurrent
            exceeded |= account["peak_daily"] > options.daily
            exceeded |= account["parallel_create_failures"] > 0
        print(f"tickets: {tickets}; launch actions failed: {failed.count()}")
        for action in failed[:5]:
            print(f"  failed: {action.last_error}")
        print(f"sessions created: {sum(a['created'] for a in report.values())}")
        print(f"mean run time D = {mean_run:.2f} s (wall), {len(runs)} sessions")
        if drained is None or finished is None:
            print(f"TIMED OUT after {options.timeout:.0f} s")
            return 1
        print(
            f"drained (last launch started) in {drained:.1f} s; ideal {ideal_drain:.1f} s; "
            f"ratio {drained / ideal_drain if ideal_drain else float('nan'):.2f}"
        )
        print(
            f"finished (every session done) in {finished:.1f} s; ideal {ideal_finish:.1f} s; "
            f"ratio {finished / ideal_finish:.2f}"
        )
        ok = tickets.get("started", 0) == options.launches and not failed.exists() and not exceeded
        print("OK" if ok else "FAILED: a launch did not start or a cap was exceeded")
        return 0 if ok else 1
    finally:
        stopping.set()
        fake.stop()
        sim.stop()


if __name__ == "__main__":
    sys.exit(main())
