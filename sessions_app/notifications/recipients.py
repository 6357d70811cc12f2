"""Who hears of an event, on which channel (docs/notifications.md, "Who is told").

A person hears of an event when they are in the team now and either are among its default
audience or asked for the kind; then each channel is on or off by their own preference, else
the team's default, else the built-in one.
"""

from __future__ import annotations

from typing import Any

from sessions_app import access
from sessions_app.models import (
    Channel,
    Event,
    EventKind,
    Membership,
    NotificationPreference,
    Role,
    TeamNotificationSettings,
)

# The least role that hears of each kind by default.
APPROVERS = {EventKind.PLAN_AWAITING, EventKind.APPROVAL_OVERDUE}
LAUNCHER = {EventKind.FEEDBACK_AWAITING, EventKind.COMPLETED, EventKind.FAILED, EventKind.PAUSED,
            EventKind.STALLED}  # fmt: skip
ADMINS = {
    EventKind.CONNECTION_BROKEN,
    EventKind.APPROVED_OUTSIDE,
    EventKind.LAUNCHED_OUTSIDE,
    EventKind.ENDPOINT_DISABLED,
}


def is_default_recipient(kind: str, role: str, user_id: int, launcher_id: int | None) -> bool:
    if kind in APPROVERS:
        return access.has_role(role, Role.APPROVER)
    if kind in LAUNCHER:
        # A session nobody launched from the portal is its team admins' to watch.
        return user_id == launcher_id if launcher_id else role == Role.ADMIN
    return role == Role.ADMIN


def recipients(event: Event) -> list[tuple[Any, set[str]]]:
    """(user, channels) of everyone to tell, members of the team only."""
    members = list(Membership.objects.filter(team_id=event.team_id).select_related("user"))
    prefs: dict[tuple[int, str], bool] = {
        (user_id, channel): enabled
        for user_id, channel, enabled in NotificationPreference.objects.filter(
            team_id=event.team_id, kind=event.kind
        ).values_list("user_id", "channel", "enabled")
    }
    team_settings = TeamNotificationSettings.objects.filter(team_id=event.team_id).first()
    email_default = team_settings.email_by_default if team_settings else True
    found: list[tuple[Any, set[str]]] = []
    for membership in members:
        user = membership.user
        if not user.is_active:
            continue
        default = is_default_recipient(event.kind, membership.role, user.pk, event.concerns_id)
        asked = any(prefs.get((user.pk, c)) for c in Channel.values)
        if not (default or asked):
            continue
        channels = set()
        if prefs.get((user.pk, Channel.PORTAL), default):
            channels.add(Channel.PORTAL.value)
        if user.email and prefs.get((user.pk, Channel.EMAIL), default and email_default):
            channels.add(Channel.EMAIL.value)
        if channels:
            found.append((user, channels))
    return found


def still_member(user_id: int, team_id: int) -> bool:
    return Membership.objects.filter(user_id=user_id, team_id=team_id).exists()
