"""Fan-out and durable delivery of events (docs/notifications.md, "Delivery").

Fan-out writes in-portal notifications and delivery rows with unique keys (event,
recipient, channel), so running it twice adds nothing. `deliver` claims a row by
conditional update like the outbox does; failures back off (doubling, at most an hour) for
NOTIFY_RETRY_HOURS, then fail, and a team channel whose delivery fails for good is disabled
and its admins are told. Deliveries of one session to one channel go out in order.

Delivery is at least once: a worker killed after the receiver took a message but before
the row says so sends it again on the next attempt, with the same `webhook-id` (or
`Message-ID`), which is what receivers deduplicate by.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from sessions_app.models import (
    Channel,
    Delivery,
    Endpoint,
    Event,
    EventKind,
    Notification,
)
from sessions_app.notifications import digests, recipients
from sessions_app.notifications.channels import DeliveryError, chat, email, http, slack, teams
from sessions_app.notifications.channels import webhook as standard_webhook
from sessions_app.outbox import requeue

logger = logging.getLogger(__name__)

Status = Delivery.Status
# Longer than the delivery task's hard time limit, so only a dead worker's claim expires.
CLAIM_SECONDS = 90
BACKOFF_CAP_SECONDS = 3600
OPEN = [Status.PENDING, Status.SENDING]

CHAT_FORMATS: dict[str, Any] = {
    Endpoint.Kind.SLACK: slack.payload,
    Endpoint.Kind.GOOGLE_CHAT: chat.payload,
    Endpoint.Kind.TEAMS: teams.payload,
}


# --- fan-out ----------------------------------------------------------------------------


def fan_out(event: Event) -> list[str]:
    """Notifications and delivery rows for one event; the ids of deliveries created."""
    now = timezone.now()
    group = dt.timedelta(seconds=settings.NOTIFY_GROUP_SECONDS)
    notifications: list[Notification] = []
    deliveries: list[Delivery] = []
    on_digest = digests.frequencies(event.team_id)
    for user, channels in recipients.recipients(event):
        if Channel.PORTAL in channels:
            notifications.append(
                Notification(event=event, user=user, team_id=event.team_id, created_at=now)
            )
        if Channel.EMAIL in channels:
            email_row = Delivery(
                key=f"{event.pk}:email:{user.pk}",
                event=event,
                channel=Channel.EMAIL,
                user=user,
                session_id_ref=event.session_id,
                next_attempt_at=now + group,
                created_at=now,
            )
            frequency = on_digest.get(user.pk)
            if frequency:
                # It waits for the person's digest of this period (notifications/digests.py).
                email_row.status = Status.DIGEST
                email_row.digest = frequency
                email_row.digest_until = email_row.next_attempt_at = digests.period_end(
                    frequency, now
                )
            deliveries.append(email_row)
    # A disabled channel's news goes to people, not into the channel that failed.
    if event.kind != EventKind.ENDPOINT_DISABLED:
        for endpoint in Endpoint.objects.filter(team_id=event.team_id, enabled=True):
            if endpoint.wants(event.kind):
                deliveries.append(
                    Delivery(
                        key=f"{event.pk}:endpoint:{endpoint.pk}",
                        event=event,
                        channel=endpoint.kind,
                        endpoint=endpoint,
                        session_id_ref=event.session_id,
                        created_at=now,
                    )
                )
    with transaction.atomic():
        Notification.objects.bulk_create(notifications, ignore_conflicts=True)
        Delivery.objects.bulk_create(deliveries, ignore_conflicts=True)
        Event.objects.filter(pk=event.pk, fanned_out_at__isnull=True).update(fanned_out_at=now)
    # Only the rows this call created (a second fan-out finds theirs taken).
    keys = [d.key for d in deliveries]
    created = Delivery.objects.filter(
        key__in=keys, created_at=now, status=Status.PENDING
    ).values_list("pk", "channel")
    due_now = [str(pk) for pk, channel in created if channel != Channel.EMAIL]
    emails = [str(pk) for pk, channel in created if channel == Channel.EMAIL]
    # After the caller's commit, when fan-out runs inside a batch (fan_out_pending).
    transaction.on_commit(lambda: _enqueue_fan_out(due_now, emails, group.total_seconds()))
    return due_now + emails


def _enqueue_fan_out(due_now: list[str], emails: list[str], group: float) -> None:
    from sessions_app import tasks

    published: list[str] = []
    for delivery_id in due_now:
        if not requeue.publish(tasks.deliver_notification, delivery_id):
            break  # The broker is down: the sweep publishes the rest, unmarked.
        published.append(delivery_id)
    requeue.mark_enqueued(Delivery, published, timezone.now())
    for delivery_id in emails:
        _enqueue(delivery_id, group)


# Events fanned out in one transaction: several fan-out tasks (one follows each commit of
# the sync) share a burst instead of all working through the same oldest events.
FAN_OUT_BATCH = 20
# A fan-out task hands the rest to a new task after this long, inside its time limit.
FAN_OUT_BUDGET_SECONDS = 60.0


def fan_out_pending(limit: int | None = None) -> int:
    """Fan out the events not yet fanned out (at most `limit`); how many it did."""
    done = 0
    deadline = time.monotonic() + FAN_OUT_BUDGET_SECONDS
    while limit is None or done < limit:
        with transaction.atomic():
            # Rows another fan-out holds are skipped, not waited for (SQLite has no such
            # lock and runs one writer at a time anyway).
            batch = list(
                Event.objects.select_for_update(skip_locked=True)
                .filter(fanned_out_at__isnull=True)
                .order_by("created_at", "id")[:FAN_OUT_BATCH]
            )
            for event in batch:
                fan_out(event)
        done += len(batch)
        if len(batch) < FAN_OUT_BATCH:
            break
        if time.monotonic() > deadline:
            _enqueue_fan_out_task()
            break
    return done


def _enqueue_fan_out_task() -> None:
    from sessions_app import tasks

    try:
        tasks.fan_out_events.delay()
    except Exception:  # The sweep fans out the rest.
        logger.warning("Could not enqueue the rest of a fan-out; the sweep will.")


# --- delivery ---------------------------------------------------------------------------


def _claim(delivery_id: str) -> bool:
    now = timezone.now()
    return (
        Delivery.objects.filter(
            pk=delivery_id, status=Status.PENDING, next_attempt_at__lte=now
        ).update(
            status=Status.SENDING,
            claimed_until=now + dt.timedelta(seconds=CLAIM_SECONDS),
            attempts=F("attempts") + 1,
            # This task held the row; what comes next publishes anew or leaves it to the
            # sweep (outbox/requeue.py).
            enqueued_at=None,
            updated_at=now,
        )
        == 1
    )


def deliver(delivery_id: str) -> str:
    """Send one delivery if it is due and nobody else holds it; its status after."""
    if not _claim(delivery_id):
        status = Delivery.objects.filter(pk=delivery_id).values_list("status", flat=True)
        return status.first() or "missing"
    delivery = Delivery.objects.select_related("event", "event__team", "user", "endpoint").get(
        pk=delivery_id
    )
    if delivery.endpoint is not None:
        earlier = _open_before(delivery)
        if earlier is not None:
            return _wait_behind(delivery, earlier)
        if not delivery.endpoint.enabled:
            return _fail(delivery, "The channel is disabled.")
    started = timezone.now()
    # The other emails this one carries; filled as they are claimed, so a failure midway
    # releases each of them.
    grouped: list[Delivery] = []
    answer = None
    try:
        if delivery.channel == Channel.EMAIL:
            _send_email(delivery, grouped)
        elif delivery.channel == digests.DIGEST_CHANNEL:
            _send_digest(delivery, grouped)
        else:
            answer = _send_to_endpoint(delivery)
    except DeliveryError as exc:
        _release(grouped)
        return _failed_attempt(delivery, str(exc), exc.retryable, exc.status, started)
    except Exception:
        _release(grouped)
        logger.exception("Delivering notification %s failed unexpectedly", delivery.pk)
        return _failed_attempt(
            delivery, "The portal hit an unexpected error (see the worker log).", True, None,
            started,
        )  # fmt: skip
    now = timezone.now()
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Status.DELIVERED,
        delivered_at=now,
        claimed_until=None,
        last_error="",
        response_code=answer.status if answer else None,
        duration_ms=answer.duration_ms if answer else int((now - started).total_seconds() * 1000),
        updated_at=now,
    )
    if grouped:
        Delivery.objects.filter(pk__in=[g.pk for g in grouped]).update(
            status=Status.DELIVERED, delivered_at=now, claimed_until=None, grouped_into=delivery.pk
        )
    if delivery.endpoint is not None:
        _kick_next(delivery)
    return Status.DELIVERED


def _send_email(delivery: Delivery, grouped: list[Delivery]) -> None:
    """Send this email with the person's other pending ones about the same session."""
    assert delivery.user is not None
    if not recipients.still_member(delivery.user.pk, delivery.event.team_id):
        raise DeliveryError("The person is no longer in the team.", retryable=False)
    if delivery.session_id_ref is not None:
        now = timezone.now()
        candidates = Delivery.objects.filter(
            user=delivery.user,
            channel=Channel.EMAIL,
            session_id_ref=delivery.session_id_ref,
            status=Status.PENDING,
        ).exclude(pk=delivery.pk)
        for other in candidates.select_related("event", "event__team"):
            claimed = Delivery.objects.filter(pk=other.pk, status=Status.PENDING).update(
                status=Status.SENDING,
                claimed_until=now + dt.timedelta(seconds=CLAIM_SECONDS),
                attempts=F("attempts") + 1,
            )
            if claimed:
                grouped.append(other)
    events = sorted([delivery.event, *(g.event for g in grouped)], key=lambda e: e.created_at)
    email.send(delivery, events)


def _send_digest(delivery: Delivery, grouped: list[Delivery]) -> None:
    """One message with every email waiting for this person's digest of this team."""
    claim_until = timezone.now() + dt.timedelta(seconds=CLAIM_SECONDS)
    grouped.extend(digests.take(delivery, claim_until))
    if grouped:  # A digest retried after its emails went out has nothing left to send.
        email.send(delivery, digests.events_of(grouped), digest=delivery.digest)


def _release(grouped: list[Delivery]) -> None:
    """Emails taken into a message that failed: back to waiting, costing no attempt."""
    for back, rows in ((Status.DIGEST, [g for g in grouped if g.digest_until]),
                       (Status.PENDING, [g for g in grouped if not g.digest_until])):  # fmt: skip
        if rows:
            Delivery.objects.filter(pk__in=[g.pk for g in rows]).update(
                status=back, claimed_until=None, attempts=F("attempts") - 1
            )


def _send_to_endpoint(delivery: Delivery) -> http.Response:
    endpoint = delivery.endpoint
    assert endpoint is not None
    import json

    site = settings.SITE_URL
    if endpoint.kind == Endpoint.Kind.WEBHOOK:
        body, headers = standard_webhook.request(delivery, endpoint.get_secret(), site)
    else:
        body = json.dumps(CHAT_FORMATS[endpoint.kind](delivery.event, site)).encode()
        headers = {}
    return http.post(endpoint.get_url(), body, headers)


def _session_order(delivery: Delivery) -> Q:
    """Deliveries of events recorded before this one's. Events, not deliveries: fan-out
    tasks running side by side may write a later event's rows first."""
    event = delivery.event
    return Q(event__created_at__lt=event.created_at) | Q(
        event__created_at=event.created_at, event_id__lt=event.pk
    )


def _open_before(delivery: Delivery) -> Delivery | None:
    """The oldest open delivery of the same session to the same channel, if any."""
    if delivery.session_id_ref is None or delivery.endpoint_id is None:
        return None
    return (
        Delivery.objects.filter(
            endpoint_id=delivery.endpoint_id,
            session_id_ref=delivery.session_id_ref,
            status__in=OPEN,
        )
        .filter(_session_order(delivery))
        .order_by("event__created_at", "event_id")
        .first()
    )


def _wait_behind(delivery: Delivery, earlier: Delivery) -> str:
    """Back to pending, costing no attempt; the earlier one kicks it when it is through."""
    now = timezone.now()
    due = max(earlier.next_attempt_at, now) + dt.timedelta(seconds=1)
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Status.PENDING,
        attempts=F("attempts") - 1,
        claimed_until=None,
        next_attempt_at=due,
        last_error="Waiting for an earlier event of this session to reach the channel.",
    )
    return Status.PENDING


def _kick_next(delivery: Delivery) -> None:
    if delivery.endpoint_id is None:
        return
    following = (
        Delivery.objects.filter(
            endpoint_id=delivery.endpoint_id,
            session_id_ref=delivery.session_id_ref,
            status=Status.PENDING,
        )
        .exclude(_session_order(delivery))
        .exclude(pk=delivery.pk)
        .order_by("event__created_at", "event_id")
        .first()
    )
    if following is not None:
        Delivery.objects.filter(pk=following.pk).update(next_attempt_at=timezone.now())
        _enqueue(str(following.pk), 0.0)


def backoff_seconds(attempts: int) -> float:
    # A fraction of a second is allowed, so that a drill can compress an outage's clock.
    base = max(0.1, float(settings.NOTIFY_BACKOFF_SECONDS))
    return round(min(BACKOFF_CAP_SECONDS, base * 2 ** max(0, attempts - 1)), 1)


def _failed_attempt(
    delivery: Delivery, reason: str, retryable: bool, status: int | None, started: dt.datetime
) -> str:
    now = timezone.now()
    duration = int((now - started).total_seconds() * 1000)
    give_up_at = delivery.created_at + dt.timedelta(hours=settings.NOTIFY_RETRY_HOURS)
    if retryable and now < give_up_at:
        wait = backoff_seconds(delivery.attempts)
        due = now + dt.timedelta(seconds=wait)
        Delivery.objects.filter(pk=delivery.pk).update(
            status=Status.PENDING,
            next_attempt_at=due,
            claimed_until=None,
            last_error=f"{reason} Attempt {delivery.attempts}; next try in {wait:g} s.",
            response_code=status,
            duration_ms=duration,
            updated_at=now,
        )
        _enqueue(str(delivery.pk), wait)
        return Status.PENDING
    Delivery.objects.filter(pk=delivery.pk).update(response_code=status, duration_ms=duration)
    return _fail(delivery, reason)


def _fail(delivery: Delivery, reason: str) -> str:
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Status.FAILED, claimed_until=None, last_error=reason, updated_at=timezone.now()
    )
    if delivery.channel == digests.DIGEST_CHANNEL:
        # Its emails fail with it, rather than wait for a digest that already failed.
        digests.waiting(delivery).update(status=Status.FAILED, last_error=reason)
    if delivery.endpoint is not None and delivery.endpoint.enabled:
        disable_endpoint(delivery.endpoint, f"A delivery failed for good: {reason}")
    return Status.FAILED


def disable_endpoint(endpoint: Endpoint, reason: str) -> None:
    """Disable a channel that keeps failing and tell the team's admins."""
    from sessions_app.notifications import events

    with transaction.atomic():
        changed = Endpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
            enabled=False, disabled_reason=reason[:1000]
        )
        if not changed:
            return
        events.record(
            [
                Event(
                    key=f"{EventKind.ENDPOINT_DISABLED}:{endpoint.pk}:{timezone.now().isoformat()}",
                    kind=EventKind.ENDPOINT_DISABLED,
                    team_id=endpoint.team_id,
                    title=f"{events.WORDS[EventKind.ENDPOINT_DISABLED]}: {endpoint.label}",
                    body=reason[:1000],
                    link=reverse("sessions_app:endpoint-detail", args=[endpoint.pk]),
                    payload={"channel": {"id": endpoint.pk, "label": endpoint.label}},
                )
            ]
        )


def redeliver(delivery: Delivery) -> None:
    """Send a delivery again now, with the same webhook id."""
    Delivery.objects.filter(pk=delivery.pk).exclude(status=Status.SENDING).update(
        status=Status.PENDING,
        next_attempt_at=timezone.now(),
        claimed_until=None,
        # A redelivery gets a fresh retry window.
        created_at=timezone.now(),
        last_error="",
    )
    from sessions_app import tasks

    requeue.publish_after_commit(Delivery, tasks.deliver_notification, str(delivery.pk))


# A wait this long or longer is left to the sweep (every 30 s): a worker holding a
# not-yet-due task crashes when the broker connection drops (kombu restores unacked
# messages on close through the dead connection), so long waits are never held there.
LONGEST_HELD_WAIT = 25.0


def _enqueue(delivery_id: str, wait: float) -> None:
    from sessions_app import tasks

    if wait >= LONGEST_HELD_WAIT:
        return
    if wait > 0 and tasks.deliver_notification.app.conf.task_always_eager:
        return  # Eager (tests, no worker): it would run now and find the row not due.
    countdown = wait + 0.5 if wait > 0 else 0.0
    requeue.publish_marked(Delivery, tasks.deliver_notification, delivery_id, countdown=countdown)


def sweep(now: dt.datetime | None = None) -> int:
    """Fan out what a lost task left, reclaim dead senders' rows, enqueue due ones that no
    queued task holds (outbox/requeue.py); how many it enqueued."""
    from sessions_app import tasks

    now = now or timezone.now()
    fan_out_pending()
    expired = Delivery.objects.filter(status=Status.SENDING, claimed_until__lt=now)
    # A digest's email whose sender died goes back to its digest, not out on its own.
    expired.filter(channel=Channel.EMAIL, digest_until__isnull=False).update(
        status=Status.DIGEST, claimed_until=None
    )
    expired.update(status=Status.PENDING, claimed_until=None, enqueued_at=None)
    return requeue.enqueue_due(
        Delivery, tasks.deliver_notification, pending=Status.PENDING, order_by="created_at", now=now
    )
