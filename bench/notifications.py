"""Notification latency and webhook throughput on the real stack (issue 14, "Figures").

Real Celery workers (the `actions` queue) on Redis and PostgreSQL, an aiosmtpd SMTP server
and a webhook receiver that verifies every delivery with the `standardwebhooks` package,
all on loopback. The benchmark process plays the sync: it records a session's transition
to COMPLETED with its event in one transaction, as the sync does, and a thread plays beat's
sweep every 30 s. For each event it measures, from the event's recording:

- portal: the in-portal notification's row (written in the fan-out's transaction);
- email: the message's arrival at the SMTP server (NOTIFY_GROUP_SECONDS=0, so no grouping
  wait is in the figure);
- webhook: the verified request's arrival at the receiver;

for single events (one at a time) and for a burst (recorded in transactions of 50), then
the webhook deliveries per second with a receiver that takes 100 ms to answer. Every
delivery is checked to arrive exactly once.

    python -m bench.notifications                 # `make notify-bench`
    python -m bench.notifications --burst 200 --singles 5 --slow 100   # a quick look

BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/jules_bench) and
BENCH_REDIS_URL (default redis://127.0.0.1:6379/6) say where; both are emptied.
docs/performance.md records a run.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import setup_django
from bench.load import Children, child_env, wait_for_worker

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/6"
SITE = "https://portal.example.com"
SWEEP_SECONDS = 30.0
TRANSACTION_SIZE = 50


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--singles", type=int, default=20, help="Single events, one at a time.")
    parser.add_argument("--burst", type=int, default=1000, help="Events in the burst.")
    parser.add_argument("--slow", type=int, default=300, help="Events to the 100 ms receiver.")
    parser.add_argument("--workers", type=int, default=2, help="Worker processes.")
    parser.add_argument("--concurrency", type=int, default=2, help="Pool size of each worker.")
    parser.add_argument("--timeout", type=float, default=300.0, help="Longest wait per phase.")
    args = parser.parse_args(argv)
    if min(args.singles, args.burst, args.slow, args.workers, args.concurrency) < 1:
        parser.error("every count must be at least 1")
    return args


@dataclass
class Phase:
    name: str
    events: int
    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)

    def line(self, channel: str) -> str:
        values = sorted(self.latencies.get(channel, []))
        if not values:
            return f"  {channel:8} none"
        p50 = statistics.median(values)
        p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
        return (
            f"  {channel:8} p50 {p50 * 1000:7.0f} ms   p95 {p95 * 1000:7.0f} ms   "
            f"max {values[-1] * 1000:7.0f} ms   ({len(values)})"
        )


class World:
    """A team whose member launched every session; a webhook channel to the receiver."""

    def __init__(self, receiver: Any, sessions: int) -> None:
        from django.contrib.auth import get_user_model

        from sessions_app.connections import crypto
        from sessions_app.models import JulesConnection, Membership, Session, Team
        from sessions_app.notifications import services

        user_model = get_user_model()
        admin = user_model.objects.create_user("bench-admin", "admin@example.com", "x" * 20)
        self.member = user_model.objects.create_user("bench-member", "member@example.com", "x")
        team = Team.objects.create(name="Bench", slug="bench")
        Membership.objects.create(team=team, user=admin, role="admin")
        Membership.objects.create(team=team, user=self.member, role="member")
        connection = JulesConnection.objects.create(
            team=team, label="Bench", base_url="http://127.0.0.1:9/v1alpha",
            api_key_encrypted=crypto.encrypt("bench-key"),
        )  # fmt: skip
        _, receiver.secret = services.endpoint_create(
            user=admin, team=team, kind="webhook", label="Receiver", url=receiver.url,
            event_kinds=[],
        )  # fmt: skip
        Session.objects.bulk_create(
            Session(
                team=team,
                connection=connection,
                remote_id=str(10**15 + n),
                name=f"sessions/{10**15 + n}",
                prompt=f"Task {n}",
                title=f"Task {n}",
                state="IN_PROGRESS",
                launched_by=self.member,
            )
            for n in range(sessions)
        )
        self.team = team
        self.sessions = list(Session.objects.filter(team=team).order_by("pk"))
        self.used = 0

    def take(self, count: int) -> list[Any]:
        taken = self.sessions[self.used : self.used + count]
        self.used += count
        assert len(taken) == count, "not enough sessions made"
        return taken


def record_completed(sessions: list[Any]) -> None:
    """What the sync does: the transitions and their events, in one transaction a batch."""
    from django.db import transaction
    from django.utils import timezone

    from sessions_app.models import SessionTransition
    from sessions_app.notifications import events

    for start in range(0, len(sessions), TRANSACTION_SIZE):
        batch = sessions[start : start + TRANSACTION_SIZE]
        with transaction.atomic():
            transitions = []
            for session in batch:
                session.state = "COMPLETED"
                session.update_time = timezone.now()
                transitions.append(
                    SessionTransition(
                        team_id=session.team_id, session=session, kind="state_changed",
                        from_state="IN_PROGRESS", to_state="COMPLETED",
                    )
                )  # fmt: skip
            SessionTransition.objects.bulk_create(transitions)
            events.events_for_transitions(transitions)


def measure(
    phase: Phase,
    sessions: list[Any],
    smtp: Any,
    receiver: Any,
    channels: tuple[str, ...],
    timeout: float,
) -> None:
    """Record the events, wait until every channel has each once, and collect latencies."""
    from sessions_app.models import Delivery, Event, Notification

    ids = {s.pk for s in sessions}
    mail_before, hooks_before = len(smtp.messages), len(receiver.received)
    started = time.monotonic()
    record_completed(sessions)
    expected = len(sessions)
    deadline = started + timeout
    while True:
        portal = Notification.objects.filter(event__session_id__in=ids).count()
        mails = len(smtp.messages) - mail_before
        hooks = len(receiver.received) - hooks_before
        counts = {"portal": portal, "email": mails, "webhook": hooks}
        if all(counts[c] >= expected for c in channels):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{phase.name}: after {timeout:.0f} s only {counts} of {expected}")
        time.sleep(0.01 if expected == 1 else 0.2)
    phase.seconds = time.monotonic() - started
    time.sleep(0.5 if expected == 1 else 3.0)  # Whatever a duplicate would need to arrive.
    recorded = {
        e.pk: e.created_at.timestamp()
        for e in Event.objects.filter(session_id__in=ids).only("pk", "created_at")
    }
    assert len(recorded) == expected, f"{phase.name}: {len(recorded)} events, not {expected}"
    if "portal" in channels:
        rows = Notification.objects.filter(event_id__in=recorded).values_list(
            "event_id", "created_at"
        )
        phase.latencies["portal"] = [at.timestamp() - recorded[e] for e, at in rows]
    if "email" in channels:
        by_delivery = {
            str(pk): event_id
            for pk, event_id in Delivery.objects.filter(
                event_id__in=recorded, channel="email"
            ).values_list("pk", "event_id")
        }
        seen: set[str] = set()
        phase.latencies["email"] = []
        for message, at in zip(
            smtp.messages[mail_before:], smtp.arrivals[mail_before:], strict=True
        ):
            delivery_id = message["Message-ID"].strip("<>").split("@", 1)[0]
            assert delivery_id not in seen, f"{phase.name}: an email arrived twice"
            seen.add(delivery_id)
            phase.latencies["email"].append(at - recorded[by_delivery[delivery_id]])
        assert len(seen) == expected, f"{phase.name}: {len(seen)} emails, not {expected}"
    if "webhook" in channels:
        got = receiver.received[hooks_before:]
        assert all(r.verified for r in got), f"{phase.name}: a signature did not verify"
        webhook_ids = [r.webhook_id for r in got]
        assert len(set(webhook_ids)) == len(webhook_ids) == expected, (
            f"{phase.name}: {len(webhook_ids)} webhooks, {len(set(webhook_ids))} distinct, "
            f"not {expected}"
        )
        phase.latencies["webhook"] = [r.at - recorded[r.payload["data"]["event_id"]] for r in got]
        phase.latencies["arrivals"] = [r.at for r in got]


def sweeper(stop: threading.Event) -> None:
    """Beat's part: the notification sweep every 30 s."""
    from django.db import connection

    from sessions_app.notifications import delivery

    while not stop.wait(SWEEP_SECONDS):
        delivery.sweep()
    connection.close()


def empty() -> None:
    from django.db import connection

    from bench.common import empty_tables

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE sessions_app_delivery, sessions_app_notification, sessions_app_event, "
            "sessions_app_endpoint, sessions_app_notificationpreference RESTART IDENTITY CASCADE"
        )
    empty_tables()
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(username__startswith="bench-").delete()


def main() -> int:
    args = parse_args()
    database_url = os.environ.get("BENCH_DATABASE_URL")
    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    os.chdir(ROOT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from tests.receivers import SmtpSink, WebhookReceiver

    smtp = SmtpSink().start()
    receiver = WebhookReceiver().start()
    settings_env = {
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp.port),
        "NOTIFY_GROUP_SECONDS": "0",
        "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        "SITE_URL": SITE,
        "CELERY_TASK_ALWAYS_EAGER": "0",
    }
    os.environ.update(settings_env)
    database_url = setup_django(database_url, redis_url=redis_url)
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    empty()
    work = Path(tempfile.mkdtemp(prefix="julesweb-notify-bench-"))
    children = Children(work)
    stop = threading.Event()
    from julesweb.celery import app

    try:
        env = {**child_env(database_url, redis_url), **settings_env}
        for n in range(args.workers):
            children.start(
                f"worker{n}",
                [sys.executable, "-m", "celery", "-A", "julesweb", "worker", "-Q", "actions",
                 "-c", str(args.concurrency), "-n", f"notify{n}@%h", "--loglevel", "WARNING",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"],
                env,
            )  # fmt: skip
        wait_for_worker(app, children)
        world = World(receiver, args.singles + args.burst + args.slow)
        threading.Thread(target=sweeper, args=(stop,), daemon=True).start()
        everything = ("portal", "email", "webhook")

        single = Phase("single", args.singles)
        for session in world.take(args.singles):
            one = Phase("single", 1)
            measure(one, [session], smtp, receiver, everything, args.timeout)
            for channel in everything:
                single.latencies.setdefault(channel, []).extend(one.latencies[channel])
        burst = Phase("burst", args.burst)
        measure(burst, world.take(args.burst), smtp, receiver, everything, args.timeout)

        # Webhooks only: the launcher has no email address for this phase.
        world.member.email = ""
        world.member.save(update_fields=["email"])
        receiver.delay = 0.1
        slow = Phase("slow", args.slow)
        measure(slow, world.take(args.slow), smtp, receiver, ("webhook",), args.timeout)
        arrivals = sorted(slow.latencies.pop("arrivals"))
        rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0

        print(
            f"{args.workers} worker(s) x {args.concurrency} on the actions queue; "
            f"PostgreSQL and Redis on loopback; cores: {os.cpu_count()}"
        )
        print(f"single events ({args.singles}, one at a time):")
        for channel in everything:
            print(single.line(channel))
        print(f"burst of {args.burst} (all delivered in {burst.seconds:.1f} s):")
        for channel in everything:
            print(burst.line(channel))
        print(
            f"receiver answering in 100 ms: {args.slow} webhooks at {rate:.1f} deliveries/s "
            f"({slow.seconds:.1f} s from the first recording to the last arrival)"
        )
        print(slow.line("webhook"))
        print("every delivery arrived exactly once and every signature verified")
        return 0
    finally:
        stop.set()
        children.stop_all()
        app.control.purge()
        smtp.stop()
        receiver.stop()


if __name__ == "__main__":
    sys.exit(main())
