"""Notifications end to end (issue 14, "How we will check it"): real Celery workers on
PostgreSQL and Redis, the simulator, an aiosmtpd SMTP server and a webhook receiver that
verifies every delivery with the `standardwebhooks` package."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from jules.client import JulesClient
from sessions_app import sync
from sessions_app.models import Delivery, Event, EventKind, Notification, SessionTransition
from sessions_app.notifications import delivery, events, services
from tests.factories import (
    ConnectionFactory,
    MembershipFactory,
    SessionFactory,
    TeamFactory,
    UserFactory,
)
from tests.integration.conftest import wait_for
from tests.receivers import SmtpSink, WebhookReceiver


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver().start()
    yield hook
    hook.stop()


@pytest.fixture
def team(transactional_db: Any) -> Any:
    team = TeamFactory(name="Acme", slug="acme")
    for role in ("admin", "approver", "member", "viewer"):
        MembershipFactory(team=team, user=UserFactory(username=role), role=role)
    return team


def _start(workers: Any, smtp: SmtpSink, names: tuple[str, ...], backoff: float = 1.0) -> list[Any]:
    workers.extra_env = {
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp.port),
        "NOTIFY_GROUP_SECONDS": "0",
        "NOTIFY_BACKOFF_SECONDS": str(backoff),
        "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        "SITE_URL": "https://portal.example.com",
    }
    return [workers.start(name, queues="actions", concurrency=2) for name in names]


def _webhook(team: Any, receiver: WebhookReceiver) -> Any:
    admin = team.memberships.get(role="admin").user
    endpoint, secret = services.endpoint_create(
        user=admin, team=team, kind="webhook", label="CI", url=receiver.url, event_kinds=[]
    )
    receiver.secret = secret
    return endpoint


def test_a_waiting_plan_reaches_everyone_once_even_across_worker_restarts(
    workers, smtp, receiver, team, simulator
):
    first, _ = _start(workers, smtp, ("n1", "n2"))
    _webhook(team, receiver)
    connection = ConnectionFactory(team=team, base_url=simulator.base_url, api_key="test-key")
    client = JulesClient("test-key", simulator.base_url)
    remote = client.create_session(
        prompt="Add tests [sim:plan_approval]",
        source="sources/github/acme/billing",
        starting_branch="main",
        require_plan_approval=True,
    )
    launcher = team.memberships.get(role="member").user
    session = sync.upsert_remote_session(connection, remote, launched_by=launcher)
    simulator.advance(70)
    sync.sync_one_session(session.pk)

    wait_for(lambda: len(smtp.messages) >= 2 and receiver.received, timeout=60)
    # A re-sync, a killed and restarted worker and the sweep add nothing.
    sync.sync_one_session(session.pk)
    sync.sync_connection(connection.pk, full=True)
    workers.kill(first, signal.SIGKILL)
    _start(workers, smtp, ("n3",))
    delivery.sweep()
    time.sleep(5)

    [event] = Event.objects.filter(kind=EventKind.PLAN_AWAITING)
    told = set(Notification.objects.filter(event=event).values_list("user__username", flat=True))
    assert told == {"admin", "approver"}
    assert sorted(e[0] for e in smtp.envelopes) == ["admin@example.com", "approver@example.com"]
    for message in smtp.messages:
        assert message["Subject"].startswith("A plan is waiting for approval")
        text = message.get_body(preferencelist=("plain",)).get_content()
        assert f"https://portal.example.com/sessions/{session.pk}/#plan-heading" in text
        assert (
            message["List-Unsubscribe"]
            .strip()
            .startswith("<https://portal.example.com/notifications/unsubscribe/")
        )
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    [got] = receiver.received
    assert got.verified and got.payload["type"] == "plan.awaiting_approval"
    assert Delivery.objects.filter(status="delivered").count() == 3


def test_a_receiver_that_was_down_gets_every_event_once_in_order(workers, smtp, receiver, team):
    _start(workers, smtp, ("d1", "d2"))
    _webhook(team, receiver)
    receiver.status = 503
    sessions = [SessionFactory(connection__team=team) for _ in range(3)]
    states = ["AWAITING_USER_FEEDBACK", "IN_PROGRESS", "PAUSED", "COMPLETED"]
    from django.db import transaction
    from django.utils import timezone

    for n, state in enumerate(states):
        for session in sessions:
            session.state = state
            session.update_time = timezone.now()
            with transaction.atomic():
                events.events_for_transitions(
                    [
                        SessionTransition(
                            team=team, session=session, kind="state_changed", to_state=state
                        )
                    ]
                )
        time.sleep(0.05 * n)
    wait_for(lambda: receiver.attempts >= 3, timeout=30)
    time.sleep(3)
    receiver.status = 204

    def all_in():
        delivery.sweep()
        return len(receiver.received) >= 9

    wait_for(all_in, timeout=120, interval=1.0)
    time.sleep(3)
    ids = [r.webhook_id for r in receiver.received]
    assert len(ids) == len(set(ids)) == 9
    assert all(r.verified for r in receiver.received)
    for session in sessions:
        kinds = [
            r.payload["type"]
            for r in receiver.received
            if r.payload["data"]["session"]["id"] == session.pk
        ]
        assert kinds == ["session.awaiting_feedback", "session.paused", "session.completed"]


def test_a_receiver_down_for_ten_minutes_gets_every_event_once_in_order(
    workers, smtp, receiver, team
):
    """The outage on a clock 20 times faster: backoff from 0.5 s instead of 10 s, beat's
    sweep every 1.5 s instead of 30 s, 30 s of a receiver that refuses connections instead
    of ten minutes. Events keep coming while it is down, and a worker is killed midway."""
    from django.db import transaction
    from django.utils import timezone

    scale = 20
    first, _ = _start(workers, smtp, ("o1", "o2"), backoff=10 / scale)
    _webhook(team, receiver)
    sessions = [SessionFactory(connection__team=team) for _ in range(4)]
    outage = 600 / scale
    receiver.stop()  # Down: connections are refused.
    down_at = time.monotonic()

    stop = threading.Event()

    def beat() -> None:
        from django.db import connection

        while not stop.wait(30 / scale):
            delivery.sweep()
        connection.close()  # The thread's own connection, or the test database stays busy.

    sweeper = threading.Thread(target=beat, daemon=True)
    sweeper.start()
    try:
        for n, state in enumerate(["AWAITING_USER_FEEDBACK", "PAUSED", "COMPLETED"]):
            for session in sessions:
                session.state = state
                session.update_time = timezone.now()
                with transaction.atomic():
                    events.events_for_transitions(
                        [SessionTransition(team=team, session=session, kind="state_changed",
                                           to_state=state)]
                    )  # fmt: skip
            if n == 1:
                workers.kill(first, signal.SIGKILL)
                workers.start("o3", queues="actions", concurrency=2)
            time.sleep(outage / 3)
        time.sleep(max(0.0, outage - (time.monotonic() - down_at)))
        tried = Delivery.objects.filter(endpoint__isnull=False).order_by("created_at").first()
        assert tried is not None and tried.attempts >= 4, "the deliveries were retried"
        assert receiver.received == []
        receiver.start()  # Back, on the same address.
        wait_for(lambda: len(receiver.received) >= 12, timeout=120, interval=0.5)
        time.sleep(3)  # What a duplicate would need to arrive.
    finally:
        stop.set()
        sweeper.join(timeout=30)

    ids = [r.webhook_id for r in receiver.received]
    assert len(ids) == len(set(ids)) == 12
    assert all(r.verified for r in receiver.received)
    for session in sessions:
        kinds = [
            r.payload["type"]
            for r in receiver.received
            if r.payload["data"]["session"]["id"] == session.pk
        ]
        assert kinds == ["session.awaiting_feedback", "session.paused", "session.completed"]
    assert set(
        Delivery.objects.filter(endpoint__isnull=False).values_list("status", flat=True)
    ) == {"delivered"}
