"""Audit reads: what of the history the user may see."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from sessions_app.models import AuditEntry, Membership, Role


def audit_entries_for_user(user: Any) -> QuerySet[AuditEntry]:
    """The audit history of the user's teams, and the sign-in events of their own account
    and, for a team's admins, of its members' accounts since they joined that team (failed
    sign-ins and lockouts carry the name that was typed, and no team): a person's sign-ins
    from before they joined are not their new team's business."""
    team_ids = Membership.objects.filter(user=user).values("team_id")
    admin_teams = Membership.objects.filter(user=user, role=Role.ADMIN).values("team_id")
    member_then = Membership.objects.filter(
        team_id__in=admin_teams,
        user__username=OuterRef("actor_label"),
        created_at__lte=OuterRef("created_at"),
    )
    return AuditEntry.objects.filter(
        Q(team_id__in=team_ids)
        | Q(team__isnull=True, actor_id=user.pk)
        | Q(team__isnull=True, action__startswith="auth.", actor_label=user.get_username())
        | (Q(team__isnull=True, action__startswith="auth.") & Exists(member_then))
    )
