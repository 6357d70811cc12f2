"""Email through Django's backend: plain text and HTML, a link straight to the session, and
a signed one-click unsubscribe per kind (`List-Unsubscribe`, RFC 8058)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from sessions_app.models import Delivery, Event
from sessions_app.notifications.channels import DeliveryError
from sessions_app.notifications.channels.common import absolute

UNSUBSCRIBE_SALT = "notifications.unsubscribe"


def unsubscribe_token(user_id: int, team_id: int, kind: str) -> str:
    return signing.dumps({"u": user_id, "t": team_id, "k": kind}, salt=UNSUBSCRIBE_SALT)


def read_unsubscribe_token(token: str) -> dict[str, Any] | None:
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    return data if isinstance(data, dict) and {"u", "t", "k"} <= set(data) else None


# The unsubscribe kind of a digest: it stops the team's email of every kind.
EVERY_KIND = "*"
DIGEST_WORDS = {"hourly": "hourly", "daily": "daily"}


def message(
    delivery: Delivery, events: Sequence[Event], digest: str = ""
) -> EmailMultiAlternatives:
    """One message for one or more events of one session (grouped) to one person, or for
    every event of a digest's period (`digest` names its frequency)."""
    user = delivery.user
    assert user is not None
    first = events[0]
    site = settings.SITE_URL
    kind = EVERY_KIND if digest else first.kind
    unsubscribe = absolute(
        site,
        reverse(
            "sessions_app:notification-unsubscribe",
            args=[unsubscribe_token(user.pk, first.team_id, kind)],
        ),
    )
    context = {
        "user": user,
        "events": [(e, absolute(site, e.link) if e.link else "") for e in events],
        "team": first.team,
        "unsubscribe_url": unsubscribe,
        "kind_label": first.get_kind_display(),
        "preferences_url": absolute(site, reverse("sessions_app:notification-preferences")),
        "digest": DIGEST_WORDS.get(digest, ""),
    }
    subject = first.title if len(events) == 1 else f"{first.title} (+{len(events) - 1} more)"
    if digest:
        count = f"{len(events)} notification{'s' if len(events) != 1 else ''}"
        subject = f"Your {DIGEST_WORDS.get(digest, '')} digest of {first.team.name}: {count}"
    domain = site.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "localhost"
    email = EmailMultiAlternatives(
        subject=subject[:200],
        body=render_to_string("sessions_app/notifications/email/event.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
        headers={
            # The same id on every retry, so a receiver can drop a duplicate.
            "Message-ID": f"<{delivery.id}@{domain}>",
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    email.attach_alternative(
        render_to_string("sessions_app/notifications/email/event.html", context), "text/html"
    )
    return email


def send(delivery: Delivery, events: Sequence[Event], digest: str = "") -> None:
    try:
        sent = message(delivery, events, digest).send(fail_silently=False)
    except (OSError, ValueError) as exc:  # smtplib's errors are OSErrors.
        raise DeliveryError(f"The mail server refused or failed: {type(exc).__name__}.") from exc
    if sent != 1:
        raise DeliveryError("The mail backend sent nothing.")
