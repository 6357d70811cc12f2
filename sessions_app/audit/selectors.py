"""Audit reads: what of the history the user may see."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from sessions_app.models import AuditEntry, Membership, Role


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
