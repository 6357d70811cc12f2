"""Session reads, always scoped to what the user may see.

Every view gets its sessions through these helpers, so that a user outside a team gets a
404 for that team's sessions, whatever the URL says.
"""

from __future__ import annotations

from typing import Any

from django.db.models import F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404

from sessions_app.access import require_role
from sessions_app.models import Activity, ActivityKind, Membership, Role, Session, SessionState


def get_session_for_user(user: Any, pk: int, needed: str = Role.VIEWER) -> Session:
    session = (
        Session.objects.select_related("connection", "team", "launched_by").filter(pk=pk).first()
    )
    if session is None:
        raise Http404("No such session.")
    require_role(user, session.team_id, needed)
    return session


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
        Activity.objects.filter(session=OuterRef("pk"), kind=ActivityKind.PLAN_GENERATED)
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
