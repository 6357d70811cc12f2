"""Team reads, scoped to the user's memberships; outsiders get 404."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from sessions_app.access import require_role
from sessions_app.models import Role, Team


def teams_for_user(user: Any) -> QuerySet[Team]:
    return Team.objects.filter(memberships__user=user).order_by("name")


def get_team_for_user(user: Any, slug: str, needed: str = Role.VIEWER) -> Team:
    team = Team.objects.filter(slug=slug, memberships__user=user).first()
    if team is None:
        raise Http404("No such team.")
    require_role(user, team.pk, needed)
    return team
