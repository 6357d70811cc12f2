"""Email digests: hourly or daily instead of one email an event (docs/notifications.md,
"Digests").

Fan-out writes a person's emails for a team on a digest as `digest` rows carrying the end
of their period. Once a period has ended, `open_due` (beat, every minute) opens one digest
delivery per person, team and period, whose unique key makes it exactly one however often
it runs; the digest is then sent, retried and logged like any delivery, and takes the
waiting emails into its message by conditional update, so each goes out in one digest.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.db.models import Min
from django.utils import timezone

from sessions_app.models import Channel, Delivery, DigestPreference, Event
from sessions_app.notifications import recipients
from sessions_app.notifications.channels import DeliveryError

Frequency = DigestPreference.Frequency
Status = Delivery.Status
# The channel of a digest's own delivery row (its waiting emails keep `email`).
DIGEST_CHANNEL = "email_digest"


def period_end(frequency: str, at: dt.datetime) -> dt.datetime:
    """The end of the hour, or of the day in TIME_ZONE, that `at` falls in."""
    local = timezone.localtime(at)
    if frequency == Frequency.HOURLY:
        start = local.replace(minute=0, second=0, microsecond=0)
        return start + dt.timedelta(hours=1)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    following = (start + dt.timedelta(days=1)).date()
    return dt.datetime.combine(following, dt.time(), tzinfo=local.tzinfo)


def frequencies(team_id: int) -> dict[int, str]:
    """The team's members on a digest: user id to frequency."""
    return dict(
        DigestPreference.objects.filter(team_id=team_id)
        .exclude(frequency=Frequency.IMMEDIATE)
        .values_list("user_id", "frequency")
    )


def digest_key(user_id: int, team_id: int, frequency: str, until: dt.datetime) -> str:
    stamp = until.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%MZ")
    return f"digest:{team_id}:{user_id}:{frequency}:{stamp}"


def open_due(now: dt.datetime | None = None) -> list[str]:
    """Open the digest of every person, team and period that has ended; the ids opened."""
    now = now or timezone.now()
    groups = (
        Delivery.objects.filter(status=Status.DIGEST, digest_until__lte=now)
        .values("user_id", "event__team_id", "digest", "digest_until")
        .annotate(first_event=Min("event_id"))
    )
    started = timezone.now()
    digests = [
        Delivery(
            id=uuid.uuid4(),
            key=digest_key(g["user_id"], g["event__team_id"], g["digest"], g["digest_until"]),
            event_id=g["first_event"],
            channel=DIGEST_CHANNEL,
            user_id=g["user_id"],
            digest=g["digest"],
            digest_until=g["digest_until"],
            next_attempt_at=started,
            created_at=started,
        )
        for g in groups
    ]
    if not digests:
        return []
    Delivery.objects.bulk_create(digests, ignore_conflicts=True)
    # The ids chosen here exist only where this call's row won its key.
    opened = Delivery.objects.filter(pk__in=[d.pk for d in digests]).values_list("pk", flat=True)
    from sessions_app import tasks
    from sessions_app.outbox import requeue

    ids = [str(pk) for pk in opened]
    for delivery_id in ids:
        requeue.publish_marked(Delivery, tasks.deliver_notification, delivery_id)
    return ids


def waiting(digest: Delivery) -> Any:
    """The emails a digest covers: its person's for its team, of its period or before."""
    assert digest.user_id is not None
    return Delivery.objects.filter(
        user_id=digest.user_id,
        channel=Channel.EMAIL,
        status=Status.DIGEST,
        event__team_id=digest.event.team_id,
        digest_until__lte=digest.digest_until,
    )


def take(digest: Delivery, claim_until: dt.datetime) -> list[Delivery]:
    """Claim the waiting emails for this digest (each by conditional update, so a second
    sender of the same digest finds them taken); a person who left gets none."""
    from django.db.models import F

    assert digest.user is not None
    if not recipients.still_member(digest.user.pk, digest.event.team_id):
        waiting(digest).update(
            status=Status.FAILED, last_error="The person left the team before the digest."
        )
        raise DeliveryError("The person is no longer in the team.", retryable=False)
    taken = []
    for other in waiting(digest).select_related("event", "event__team").order_by("created_at"):
        claimed = Delivery.objects.filter(pk=other.pk, status=Status.DIGEST).update(
            status=Status.SENDING, claimed_until=claim_until, attempts=F("attempts") + 1
        )
        if claimed:
            taken.append(other)
    return taken


def events_of(taken: list[Delivery]) -> list[Event]:
    return sorted((d.event for d in taken), key=lambda e: (e.created_at, e.pk))
