"""Team reads, scoped to the user's memberships; outsiders get 404."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, QuerySet
from django.http import Http404

from sessions_app.access import require_role
from sessions_app.models import ApiToken, Membership, Role, Team


def teams_for_user(user: Any) -> QuerySet[Team]:
    return Team.objects.filter(memberships__user=user).order_by("name")


def get_team_for_user(user: Any, slug: str, needed: str = Role.VIEWER) -> Team:
    team = Team.objects.filter(slug=slug, memberships__user=user).first()
    if team is None:
        raise Http404("No such team.")
    require_role(user, team.pk, needed)
    return team


# --- service tokens' bots (docs/api.md, "Authentication") ----------------------------


def is_service_bot(user_ref: str = "user") -> Exists:
    """Whether the user at `user_ref` (an outer query's path) is a service token's bot,
    which is a member of its team so that roles and the audit apply, but not a person."""
    return Exists(ApiToken.objects.filter(user=OuterRef(user_ref), team__isnull=False))


def people_of_team(team: Team) -> QuerySet[Membership]:
    """The team's memberships of people, without its service tokens' bots."""
    return Membership.objects.filter(team=team).exclude(is_service_bot())


def service_bot_label(username: str) -> str:
    """`token:<prefix>:<name>` as a menu shows it: plainly a token, not a person."""
    _, prefix, name = [*username.split(":", 2), "", ""][:3]
    return f"{name or username} (service token {prefix})" if prefix else username
