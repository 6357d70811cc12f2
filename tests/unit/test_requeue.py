"""The sweeps publish a task only for due rows that no queued task holds (outbox/requeue.py),
so a burst is not enqueued again every 30 s, and a dead broker still loses nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from celery import Celery
from django.utils import timezone

from bench.common import free_port
from sessions_app.models import Delivery, Event, Notification, OutboxAction, SessionTransition
from sessions_app.notifications import delivery, events, services
from sessions_app.outbox import delivery as actions
from sessions_app.outbox import requeue
from sessions_app.sessions import services as session_services
from tests.factories import SessionFactory
from tests.receivers import WebhookReceiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    hook = WebhookReceiver().start()
    try:
        yield hook
    finally:
        hook.stop()


def _three_deliveries(cast, receiver):
    endpoint, secret = services.endpoint_create(
        user=cast.admin, team=cast.team, kind="webhook", label="CI", url=receiver.url,
        event_kinds=[],
    )  # fmt: skip
    receiver.secret = secret
    cast.member.email = ""  # Webhooks only, so the counts below are the endpoint's.
    cast.member.save()
    for _ in range(3):
        session = SessionFactory(connection__team=cast.team, launched_by=cast.member)
        session.state = "COMPLETED"
        session.update_time = timezone.now()
        events.events_for_transitions(
            [SessionTransition(team=cast.team, session=session, kind="state_changed",
                               from_state="IN_PROGRESS", to_state="COMPLETED")]
        )  # fmt: skip
    # The test's transaction never commits, so fan-out publishes nothing by itself.
    delivery.fan_out_pending()
    rows = list(Delivery.objects.filter(endpoint=endpoint).order_by("created_at"))
    assert len(rows) == 3 and {r.status for r in rows} == {"pending"}
    return rows


def _status(row):
    row.refresh_from_db()
    return row.status


def test_the_sweep_leaves_deliveries_a_queued_task_holds_and_takes_lost_ones(cast, receiver):
    held, lost, never = _three_deliveries(cast, receiver)
    now = timezone.now()
    Delivery.objects.filter(pk=held.pk).update(enqueued_at=now)
    Delivery.objects.filter(pk=lost.pk).update(enqueued_at=now - dt.timedelta(minutes=10))

    assert delivery.sweep(now=now) == 2
    assert _status(held) == "pending" and held.attempts == 0
    assert _status(lost) == "delivered" and _status(never) == "delivered"
    assert len(receiver.received) == 2
    # Nothing due and unheld is left, so a second sweep publishes nothing at all.
    assert delivery.sweep(now=now) == 0
    # Once its mark is older than REQUEUE_AFTER, its task counts as lost.
    assert delivery.sweep(now=now + requeue.REQUEUE_AFTER + dt.timedelta(seconds=1)) == 1
    assert _status(held) == "delivered"
    assert sorted(r.webhook_id for r in receiver.received) == sorted(
        d.webhook_id for d in (held, lost, never)
    )


def test_a_claimed_row_forgets_its_task_so_a_dead_sender_is_taken_at_once(cast, receiver):
    row, _, _ = _three_deliveries(cast, receiver)
    now = timezone.now()
    Delivery.objects.filter(pk=row.pk).update(enqueued_at=now)
    receiver.status = 500
    assert delivery.deliver(str(row.pk)) == "pending"
    row.refresh_from_db()
    # The eager retry is not published (it would run now); the sweep takes it when due.
    assert row.enqueued_at is None and row.attempts == 1
    # A sender that died mid-send: its claim expires and the next sweep sends it.
    receiver.status = 204
    Delivery.objects.filter(pk=row.pk).update(
        status="sending", claimed_until=now - dt.timedelta(seconds=1), next_attempt_at=now
    )
    assert delivery.sweep(now=now) >= 1
    assert _status(row) == "delivered"


def test_the_outbox_sweep_leaves_actions_a_queued_task_holds(cast, simulator, sim_connection):
    launches = [
        session_services.session_launch(user=cast.member, connection=sim_connection, prompt=p)
        for p in ("a", "b")
    ]
    held, lost = launches
    now = timezone.now()
    OutboxAction.objects.filter(pk=held.pk).update(enqueued_at=now)
    assert actions.sweep(now=now) == 1
    assert _status(lost) == "done" and _status(held) == "pending"
    assert actions.sweep(now=now + requeue.REQUEUE_AFTER + dt.timedelta(seconds=1)) == 1
    assert _status(held) == "done"
    assert simulator.request_counts()["sessions.create"] == 2


def test_a_dead_broker_leaves_the_rows_unmarked_for_the_next_sweep(cast, receiver):
    rows = _three_deliveries(cast, receiver)
    # A real Celery app whose Redis broker is a port nobody listens on.
    dead = Celery("dead", broker=f"redis://127.0.0.1:{free_port()}/0", set_as_current=False)
    dead.conf.update(broker_connection_timeout=0.5, broker_connection_retry=False,
                     task_publish_retry=False)  # fmt: skip

    @dead.task(name="dead.deliver")
    def deliver(delivery_id: str) -> None:  # pragma: no cover - never runs
        raise AssertionError(delivery_id)

    sent = requeue.enqueue_due(Delivery, deliver, pending="pending", order_by="created_at")
    assert sent == 0
    assert set(Delivery.objects.filter(pk__in=[r.pk for r in rows]).values_list(
        "enqueued_at", flat=True)) == {None}  # fmt: skip
    # The broker back (here: the eager app of the tests), the sweep delivers all three.
    assert delivery.sweep() == 3
    assert {_status(r) for r in rows} == {"delivered"}


def test_one_fan_out_works_through_a_whole_burst_batch_by_batch(cast):
    sessions = [
        SessionFactory(connection__team=cast.team, launched_by=cast.member) for _ in range(45)
    ]
    events.record([events.session_event(s, "session.completed", f"{s.pk}:burst") for s in sessions])
    assert delivery.fan_out_pending() == 45  # Three batches of up to 20, in one call.
    assert not Event.objects.filter(fanned_out_at__isnull=True).exists()
    assert Notification.objects.filter(user=cast.member).count() == 45
    assert delivery.fan_out_pending() == 0


def test_a_sessions_webhooks_keep_the_order_of_its_events_whatever_fan_out_wrote_first(
    cast, receiver
):
    endpoint, secret = services.endpoint_create(
        user=cast.admin, team=cast.team, kind="webhook", label="CI", url=receiver.url,
        event_kinds=[],
    )  # fmt: skip
    receiver.secret = secret
    session = SessionFactory(connection__team=cast.team, launched_by=cast.member)
    first, second = (
        events.session_event(session, kind, f"{session.pk}:{kind}")
        for kind in ("session.awaiting_feedback", "session.paused")
    )
    first.save()
    second.save()
    # Two fan-out tasks side by side: the later event's rows happen to be written first.
    delivery.fan_out(second)
    delivery.fan_out(first)
    later = Delivery.objects.get(event=second, endpoint=endpoint)
    earlier = Delivery.objects.get(event=first, endpoint=endpoint)
    assert later.created_at < earlier.created_at
    assert delivery.deliver(str(later.pk)) == "pending"  # It waits for the earlier event.
    assert receiver.received == []
    assert delivery.deliver(str(earlier.pk)) == "delivered"  # And then kicks the later one.
    assert [r.payload["type"] for r in receiver.received] == [
        "session.awaiting_feedback",
        "session.paused",
    ]
