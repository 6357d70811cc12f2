"""Reads, always scoped to what the user may see.

Every view gets its objects through these helpers, so that a user outside a team gets a
404 for that team's sessions, connections and audit, whatever the URL says.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from sessions_app.models import JulesConnection, Membership, Role, Session, Team
from sessions_app.models.teams import role_at_least


class RoleRequired(Exception):
    """The user is in the team but their role does not allow the action."""

    def __init__(self, needed: str, message: str = "") -> None:
        self.needed = needed
        super().__init__(message or f"This needs the {needed} role in the team.")


def teams_for_user(user: Any) -> QuerySet[Team]:
    return Team.objects.filter(memberships__user=user).order_by("name")


def team_ids_for_user(user: Any) -> list[int]:
    return list(Membership.objects.filter(user=user).values_list("team_id", flat=True))


def memberships_for_user(user: Any) -> dict[int, Membership]:
    """The user's memberships keyed by team id: one query that answers every role check."""
    return {m.team_id: m for m in Membership.objects.filter(user=user).select_related("team")}


def role_in_team(user: Any, team_id: int) -> str | None:
    return (
        Membership.objects.filter(user=user, team_id=team_id).values_list("role", flat=True).first()
    )


def user_can(user: Any, team_id: int, needed: str) -> bool:
    role = role_in_team(user, team_id)
    return role is not None and role_at_least(role, needed)


def require_role(user: Any, team_id: int, needed: str) -> str:
    """Return the user's role, or raise Http404 (outsider) / RoleRequired (too low a role)."""
    role = role_in_team(user, team_id)
    if role is None:
        raise Http404("No such object.")
    if not role_at_least(role, needed):
        raise RoleRequired(needed)
    return role


def get_team_for_user(user: Any, slug: str, needed: str = Role.VIEWER) -> Team:
    team = Team.objects.filter(slug=slug, memberships__user=user).first()
    if team is None:
        raise Http404("No such team.")
    require_role(user, team.pk, needed)
    return team


def sessions_for_user(user: Any) -> QuerySet[Session]:
    return Session.objects.filter(
        team_id__in=Membership.objects.filter(user=user).values("team_id")
    )


def get_session_for_user(user: Any, pk: int, needed: str = Role.VIEWER) -> Session:
    session = (
        Session.objects.select_related("connection", "team", "launched_by").filter(pk=pk).first()
    )
    if session is None:
        raise Http404("No such session.")
    require_role(user, session.team_id, needed)
    return session


def connections_for_user(user: Any) -> QuerySet[JulesConnection]:
    return JulesConnection.objects.filter(
        team_id__in=Membership.objects.filter(user=user).values("team_id")
    ).select_related("team")


def get_connection_for_user(user: Any, pk: int, needed: str = Role.VIEWER) -> JulesConnection:
    connection = JulesConnection.objects.select_related("team").filter(pk=pk).first()
    if connection is None:
        raise Http404("No such connection.")
    require_role(user, connection.team_id, needed)
    return connection
