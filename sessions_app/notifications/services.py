"""Writes of the notifications concern: team channels, preferences, read marks.

Role checks through `access`, audit entries in the same transaction as the change.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from sessions_app import access
from sessions_app.audit import chain as audit
from sessions_app.audit.actions import AuditAction
from sessions_app.audit.chain import Target
from sessions_app.models import (
    Delivery,
    DigestPreference,
    Endpoint,
    Notification,
    NotificationPreference,
    Team,
    TeamNotificationSettings,
)
from sessions_app.notifications import delivery as deliveries
from sessions_app.notifications.channels import webhook


def _require_admin(user: Any, team_id: int, doing: str) -> None:
    role = access.require_in_team(user, team_id)
    access.require(access.may_manage_team_channels(role, doing))


def _target(endpoint: Endpoint) -> Target:
    return Target("channel", str(endpoint.pk), endpoint.label)


def endpoint_create(
    *,
    user: Any,
    team: Team,
    kind: str,
    label: str,
    url: str,
    event_kinds: list[str],
    request: HttpRequest | None = None,
) -> tuple[Endpoint, str]:
    """The new channel and, for a generic webhook, its secret (shown once)."""
    _require_admin(user, team.pk, "add team channels")
    secret = webhook.new_secret() if kind == Endpoint.Kind.WEBHOOK else ""
    endpoint = Endpoint(
        team=team, kind=kind, label=label.strip(), event_kinds=event_kinds, created_by=user
    )
    endpoint.set_url(url)
    if secret:
        endpoint.set_secret(secret)
    with transaction.atomic():
        endpoint.save()
        audit.record(
            AuditAction.CHANNEL_ADD,
            actor=user,
            team=team.pk,
            target=_target(endpoint),
            details={"kind": kind, "event_kinds": event_kinds},
            request=request,
        )
    return endpoint, secret


def endpoint_rotate_secret(
    *, user: Any, endpoint: Endpoint, request: HttpRequest | None = None
) -> str:
    _require_admin(user, endpoint.team_id, "rotate channel secrets")
    access.require(
        access.Decision(endpoint.kind == Endpoint.Kind.WEBHOOK, "Only generic webhooks are signed.")
    )
    secret = webhook.new_secret()
    with transaction.atomic():
        locked = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.set_secret(secret)
        locked.secret_rotated_at = timezone.now()
        locked.save(update_fields=["secret_encrypted", "secret_rotated_at"])
        audit.record(
            AuditAction.CHANNEL_ROTATE,
            actor=user,
            team=locked.team_id,
            target=_target(locked),
            request=request,
        )
    return secret


def endpoint_set_enabled(
    *, user: Any, endpoint: Endpoint, enabled: bool, request: HttpRequest | None = None
) -> Endpoint:
    _require_admin(user, endpoint.team_id, "enable or disable team channels")
    with transaction.atomic():
        locked = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        if locked.enabled == enabled:
            return locked
        locked.enabled = enabled
        locked.disabled_reason = "" if enabled else "Disabled by an admin."
        locked.save(update_fields=["enabled", "disabled_reason"])
        audit.record(
            AuditAction.CHANNEL_ENABLE if enabled else AuditAction.CHANNEL_DISABLE,
            actor=user,
            team=locked.team_id,
            target=_target(locked),
            request=request,
        )
    return locked


def delivery_redeliver(
    *, user: Any, delivery: Delivery, request: HttpRequest | None = None
) -> None:
    assert delivery.endpoint is not None
    _require_admin(user, delivery.endpoint.team_id, "redeliver notifications")
    access.require(
        access.Decision(
            delivery.status != Delivery.Status.SENDING, "This delivery is being sent right now."
        )
    )
    with transaction.atomic():
        deliveries.redeliver(delivery)
        audit.record(
            AuditAction.CHANNEL_REDELIVER,
            actor=user,
            team=delivery.endpoint.team_id,
            target=_target(delivery.endpoint),
            details={"webhook_id": delivery.webhook_id, "event": delivery.event.kind},
            request=request,
        )


def team_settings_save(
    *, user: Any, team: Team, values: dict[str, Any], request: HttpRequest | None = None
) -> TeamNotificationSettings:
    _require_admin(user, team.pk, "change the team's notification settings")
    with transaction.atomic():
        settings_row, _ = TeamNotificationSettings.objects.select_for_update().get_or_create(
            team=team
        )
        for name, value in values.items():
            setattr(settings_row, name, value)
        settings_row.save()
        audit.record(
            AuditAction.NOTIFY_SETTINGS_CHANGE,
            actor=user,
            team=team.pk,
            target=Target.of_team(team),
            details=dict(values),
            request=request,
        )
    return settings_row


def preference_set(*, user: Any, team_id: int, kind: str, channel: str, enabled: bool) -> None:
    access.require_in_team(user, team_id)
    NotificationPreference.objects.update_or_create(
        user=user, team_id=team_id, kind=kind, channel=channel, defaults={"enabled": enabled}
    )


def digest_set(*, user: Any, team_id: int, frequency: str) -> None:
    """Email as it happens, or one digest an hour or a day, for one team."""
    access.require_in_team(user, team_id)
    DigestPreference.objects.update_or_create(
        user=user, team_id=team_id, defaults={"frequency": frequency}
    )


def notification_mark_read(*, user: Any, notification_id: int) -> bool:
    return bool(
        Notification.objects.filter(pk=notification_id, user=user, read_at__isnull=True).update(
            read_at=timezone.now()
        )
    )


def notifications_mark_all_read(*, user: Any) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).update(
        read_at=timezone.now()
    )
