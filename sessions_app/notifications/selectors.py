"""Reads of the notifications concern, scoped to what the person may see."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from sessions_app import access
from sessions_app.access import RoleRequired
from sessions_app.models import Delivery, Endpoint, Membership, Notification, Role


def notifications_for_user(user: Any) -> QuerySet[Notification]:
    """The person's notifications of the teams they are in now (leaving a team hides them)."""
    teams = Membership.objects.filter(user=user).values("team_id")
    return Notification.objects.filter(user=user, team_id__in=teams).select_related("event", "team")


def unread_count(user: Any) -> int:
    return notifications_for_user(user).filter(read_at__isnull=True).count()


def get_endpoint_for_user(user: Any, pk: int) -> Endpoint:
    """A team channel for one of its team's admins; 404 for outsiders, RoleRequired else."""
    endpoint = Endpoint.objects.select_related("team").filter(pk=pk).first()
    if endpoint is None:
        raise Http404("No such channel.")
    role = access.require_in_team(user, endpoint.team_id)
    if not access.may_manage_team_channels(role):
        raise RoleRequired(Role.ADMIN)
    return endpoint


def delivery_log(endpoint: Endpoint, limit: int = 100) -> QuerySet[Delivery]:
    return (
        Delivery.objects.filter(endpoint=endpoint)
        .select_related("event")
        .order_by("-created_at")[:limit]
    )
