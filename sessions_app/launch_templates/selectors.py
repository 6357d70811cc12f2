"""Template and schedule reads, scoped to the user's teams; outsiders get 404."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404

from sessions_app.models import (
    JulesConnection,
    LaunchTemplate,
    Membership,
    Role,
    Schedule,
    Session,
    Source,
    Team,
    TemplateLaunch,
)

EDITING_ROLES = [Role.MEMBER, Role.APPROVER, Role.ADMIN]


def templates_for_user(user: Any, q: str = "") -> QuerySet[LaunchTemplate]:
    templates = (
        LaunchTemplate.objects.filter(team__memberships__user=user)
        .select_related("team", "current", "current__author")
        .order_by("team__name", "name")
    )
    if q:
        templates = templates.filter(
            Q(name__icontains=q)
            | Q(current__prompt__icontains=q)
            | Q(current__title_pattern__icontains=q)
        )
    return templates


def get_template_for_user(user: Any, pk: int) -> LaunchTemplate:
    template = templates_for_user(user).filter(pk=pk).first()
    if template is None:
        raise Http404("No such template.")
    return template


def editing_teams(user: Any) -> QuerySet[Team]:
    """Teams where the user may create templates and schedules."""
    teams = Membership.objects.filter(user=user, role__in=EDITING_ROLES).values("team_id")
    return Team.objects.filter(pk__in=teams).order_by("name")


def team_sources(team_ids: list[int]) -> list[tuple[int, str, str]]:
    """(team id, source name, "owner/repo") of every repository the teams' connections
    synced, once per team."""
    seen: dict[tuple[int, str], str] = {}
    for source in (
        Source.objects.filter(connection__team_id__in=team_ids)
        .select_related("connection")
        .only("name", "owner", "repo", "source_id", "connection__team_id")
        .order_by("owner", "repo")
    ):
        seen.setdefault((source.connection.team_id, source.name), source.full_name)
    return [(team_id, name, label) for (team_id, name), label in seen.items()]


def launch_connections_for(user: Any, team_id: int) -> QuerySet[JulesConnection]:
    if not Membership.objects.filter(user=user, team_id=team_id, role__in=EDITING_ROLES).exists():
        return JulesConnection.objects.none()
    return JulesConnection.objects.filter(team_id=team_id, enabled=True).order_by("label")


def recent_launches(template: LaunchTemplate, limit: int = 20) -> list[TemplateLaunch]:
    return list(
        template.launches.select_related(
            "version", "session", "action", "action__session", "launched_by"
        ).order_by("-created_at")[:limit]
    )


def schedules_for_user(user: Any) -> QuerySet[Schedule]:
    return (
        Schedule.objects.filter(team__memberships__user=user)
        .select_related("team", "template", "connection")
        .order_by("team__name", "name")
    )


def get_schedule_for_user(user: Any, pk: int) -> Schedule:
    schedule = schedules_for_user(user).filter(pk=pk).first()
    if schedule is None:
        raise Http404("No such schedule.")
    return schedule


def launch_of_session(session: Session) -> TemplateLaunch | None:
    """The template launch that made the session, if one did."""
    return (
        TemplateLaunch.objects.filter(Q(session=session) | Q(action__session=session))
        .select_related("template", "version")
        .first()
    )
