"""Connection reads, scoped to the user's teams; outsiders get 404."""

from __future__ import annotations

from typing import Any, NamedTuple

from django.http import Http404
from django.utils import timezone

from sessions_app.access import require_role
from sessions_app.models import (
    Activity,
    JulesConnection,
    OutboxAction,
    Role,
    Session,
)


def get_connection_for_user(user: Any, pk: int, needed: str = Role.VIEWER) -> JulesConnection:
    connection = JulesConnection.objects.select_related("team").filter(pk=pk).first()
    if connection is None:
        raise Http404("No such connection.")
    require_role(user, connection.team_id, needed)
    return connection


PHASES = {
    "starting": "Starting",
    "sources": "Reading the repositories",
    "sessions": "Listing sessions",
    "refresh": "Re-reading sessions that can still change",
    "activities": "Reading new activity",
}


class SyncProgress(NamedTuple):
    """What the status fragment shows: whether a sync runs now, and its phase in words."""

    syncing: bool
    phase: str


def sync_progress(connection: JulesConnection) -> SyncProgress:
    now = timezone.now()
    claimed = connection.sync_claimed_until is not None and connection.sync_claimed_until > now
    return SyncProgress(
        syncing=claimed and bool(connection.sync_phase),
        phase=PHASES.get(connection.sync_phase, connection.sync_phase.capitalize()),
    )


class RemovalSummary(NamedTuple):
    """What removing a connection deletes (the audit history is kept)."""

    sessions: int
    activities: int
    repositories: int
    unsent_actions: int


def removal_summary(connection: JulesConnection) -> RemovalSummary:
    open_statuses = [OutboxAction.Status.PENDING, OutboxAction.Status.SENDING]
    return RemovalSummary(
        sessions=Session.objects.filter(connection=connection).count(),
        activities=Activity.objects.filter(session__connection=connection).count(),
        repositories=connection.sources.count(),
        unsent_actions=OutboxAction.objects.filter(
            connection=connection, status__in=open_statuses
        ).count(),
    )
