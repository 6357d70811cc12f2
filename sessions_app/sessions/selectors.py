"""Reads, always scoped to what the user may see.

Every view gets its objects through these helpers, so that a user outside a team gets a
404 for that team's sessions, connections and audit, whatever the URL says.
"""

from __future__ import annotations

from typing import Any

from django.db.models import F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404

from sessions_app.models import (
    Activity,
    AuditEntry,
    JulesConnection,
    Membership,
    Role,
    Session,
    SessionState,
    Team,
)
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


def audit_entries_for_user(user: Any) -> QuerySet[AuditEntry]:
    """The audit history of the user's teams, and the sign-in events of their own account
    and, for a team's admins, of its members' accounts (failed sign-ins and lockouts
    carry the name that was typed, and no team)."""
    team_ids = Membership.objects.filter(user=user).values("team_id")
    admin_teams = Membership.objects.filter(user=user, role=Role.ADMIN).values("team_id")
    watched = Membership.objects.filter(team_id__in=admin_teams).values("user__username")
    return AuditEntry.objects.filter(
        Q(team_id__in=team_ids)
        | Q(team__isnull=True, actor_id=user.pk)
        | Q(team__isnull=True, action__startswith="auth.", actor_label=user.get_username())
        | Q(team__isnull=True, action__startswith="auth.", actor_label__in=watched)
    )


def approvable_sessions_for_user(user: Any) -> QuerySet[Session]:
    """Sessions waiting for plan approval that the user may approve, the plan that has
    waited longest first (a revised plan waits from when it was generated).

    Approver or admin in the session's team, minus the sessions they launched where the
    team forbids self-approval.
    """
    approver_teams = Membership.objects.filter(
        user=user, role__in=[Role.APPROVER, Role.ADMIN]
    ).values("team_id")
    latest_plan = (
        Activity.objects.filter(session=OuterRef("pk"), kind="planGenerated")
        .order_by("-create_time", "-id")
        .values("create_time")[:1]
    )
    return (
        Session.objects.filter(
            team_id__in=approver_teams,
            state=SessionState.AWAITING_PLAN_APPROVAL,
            deleted_remotely=False,
        )
        .exclude(team__forbid_self_approval=True, launched_by=user)
        .annotate(plan_time=Coalesce(Subquery(latest_plan), F("create_time")))
        .order_by(F("plan_time").asc(nulls_last=True), "create_time", "id")
    )
