"""The receiver outage drill, in real time (`make notify-outage`, docs/reliability.md).

Real Celery workers on Redis and PostgreSQL, the settings' own backoff, beat's sweep every
30 s (played by a thread), and a webhook receiver that verifies every request with the
`standardwebhooks` package. The receiver stops (connections refused) for `--minutes`;
meanwhile each session records one event a round (awaiting feedback, paused, completed,
then again), and a worker is killed with SIGKILL halfway and replaced. Then the receiver
starts again on the same address, and the drill waits until every event has arrived and
checks: each once (distinct webhook ids), every signature valid, each session's events in
their order. It prints how long the backlog took to arrive after the receiver came back.

    python -m bench.notify_outage                 # ten minutes down (`make notify-outage`)
    python -m bench.notify_outage --minutes 2     # a shorter one

BENCH_DATABASE_URL and BENCH_REDIS_URL as for bench/notifications.py; both are emptied.
Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import setup_django
from bench.load import Children, child_env, wait_for_worker
from bench.notifications import DEFAULT_REDIS_URL, SITE, World, empty, sweeper

ROOT = Path(__file__).resolve().parent.parent
STATES = ["AWAITING_USER_FEEDBACK", "PAUSED", "COMPLETED"]
KINDS = ["session.awaiting_feedback", "session.paused", "session.completed"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="How long it is down.")
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=6, help="Events per session.")
    parser.add_argument("--wait-minutes", type=float, default=30.0, help="Longest wait after.")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.sessions < 1 or args.rounds < 1:
        parser.error("--minutes, --sessions and --rounds must be positive")
    return args


def record(sessions: list[Any], state: str) -> None:
    from django.db import transaction
    from django.utils import timezone

    from sessions_app.models import SessionTransition
    from sessions_app.notifications import events

    with transaction.atomic():
        transitions = []
        for session in sessions:
            session.state = state
            session.update_time = timezone.now()
            transitions.append(
                SessionTransition(
                    team_id=session.team_id, session=session, kind="state_changed",
                    to_state=state,
                )
            )  # fmt: skip
        SessionTransition.objects.bulk_create(transitions)
        events.events_for_transitions(transitions)


def check(receiver: Any, sessions: list[Any], rounds: int) -> list[str]:
    problems = []
    got = list(receiver.received)
    ids = [r.webhook_id for r in got]
    if len(ids) != len(set(ids)):
        problems.append(f"{len(ids) - len(set(ids))} webhooks arrived twice")
    if len(set(ids)) != len(sessions) * rounds:
        problems.append(f"{len(set(ids))} distinct webhooks, not {len(sessions) * rounds}")
    if not all(r.verified for r in got):
        problems.append("a signature did not verify")
    expected = [KINDS[n % len(KINDS)] for n in range(rounds)]
    for session in sessions:
        kinds = [r.payload["type"] for r in got if r.payload["data"]["session"]["id"] == session.pk]
        if kinds != expected:
            problems.append(f"session {session.pk} got {kinds}, not {expected}")
    return problems


def main() -> int:
    args = parse_args()
    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    os.chdir(ROOT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from tests.receivers import WebhookReceiver

    receiver = WebhookReceiver().start()
    settings_env = {
        "NOTIFY_GROUP_SECONDS": "0",
        "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        "SITE_URL": SITE,
        "CELERY_TASK_ALWAYS_EAGER": "0",
    }
    os.environ.update(settings_env)
    database_url = setup_django(os.environ.get("BENCH_DATABASE_URL"), redis_url=redis_url)
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    empty()
    children = Children(Path(tempfile.mkdtemp(prefix="julesweb-notify-outage-")))
    stop = threading.Event()
    from django.conf import settings

    from julesweb.celery import app

    env = {**child_env(database_url, redis_url), **settings_env}

    def worker(name: str) -> None:
        children.start(
            name,
            [sys.executable, "-m", "celery", "-A", "julesweb", "worker", "-Q", "actions",
             "-c", "2", "-n", f"{name}@%h", "--loglevel", "WARNING", "--without-gossip",
             "--without-mingle", "--without-heartbeat"],
            env,
        )  # fmt: skip

    try:
        worker("outage1")
        worker("outage2")
        wait_for_worker(app, children)
        world = World(receiver, args.sessions)
        world.member.email = ""  # Webhooks only.
        world.member.save(update_fields=["email"])
        sessions = world.take(args.sessions)
        threading.Thread(target=sweeper, args=(stop,), daemon=True).start()

        down = args.minutes * 60
        print(
            f"Receiver down for {args.minutes:g} min; backoff from "
            f"{settings.NOTIFY_BACKOFF_SECONDS:g} s; {args.sessions} sessions x {args.rounds} "
            "events",
            flush=True,
        )
        receiver.stop()
        started = time.monotonic()
        for n in range(args.rounds):
            record(sessions, STATES[n % len(STATES)])
            if n == args.rounds // 2:
                killed = children.procs.pop("outage1")
                os.killpg(killed.pid, signal.SIGKILL)
                killed.wait()
                worker("outage3")
                print("  killed a worker with SIGKILL and started another", flush=True)
            time.sleep(down / args.rounds)
        time.sleep(max(0.0, down - (time.monotonic() - started)))
        from sessions_app.models import Delivery

        tries = max(
            Delivery.objects.filter(endpoint__isnull=False).values_list("attempts", flat=True)
        )
        receiver.start()
        back = time.monotonic()
        print(f"  receiver back after {back - started:.0f} s; most tries of one: {tries}")
        expected = args.sessions * args.rounds
        deadline = back + args.wait_minutes * 60
        while len(receiver.received) < expected and time.monotonic() < deadline:
            children.check()
            time.sleep(1)
        caught_up = time.monotonic() - back
        time.sleep(5)  # What a duplicate would need to arrive.
        problems = check(receiver, sessions, args.rounds)
        print(f"  {len(receiver.received)} of {expected} arrived, the last {caught_up:.0f} s after")
        for problem in problems:
            print(f"  FAILED: {problem}")
        if not problems:
            print("  every event once, in order per session, every signature verified")
        return 1 if problems else 0
    finally:
        stop.set()
        children.stop_all()
        app.control.purge()
        receiver.stop()


if __name__ == "__main__":
    sys.exit(main())
