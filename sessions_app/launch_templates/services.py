"""Template writes and launches from templates (docs/templates.md); schedules: `schedules`.

Each service asks `access`, writes in one transaction with its audit entry, and launches
only through `sessions.services.session_launch`, so every launch is an outbox action like
any other (and is queued, planned and approved like any other).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.http import Http404, HttpRequest
from django.utils import timezone

from sessions_app import access
from sessions_app.access import ActionNotAllowed
from sessions_app.audit import chain as audit
from sessions_app.audit.actions import AuditAction
from sessions_app.audit.chain import Target
from sessions_app.launch_templates.variables import (
    MAX_VALUE_LENGTH,
    MissingVariables,
    missing,
    render,
    variables_in,
)
from sessions_app.models import (
    JulesConnection,
    LaunchTemplate,
    ScheduleRun,
    Source,
    Team,
    TemplateLaunch,
    TemplateVersion,
)
from sessions_app.sessions import services as session_services

FIELDS = (
    "name",
    "prompt",
    "title_pattern",
    "repositories",
    "branch",
    "require_plan_approval",
    "auto_create_pr",
)
FIELD_LABELS = {
    "name": "name",
    "prompt": "prompt",
    "title_pattern": "title pattern",
    "repositories": "repositories",
    "branch": "branch",
    "require_plan_approval": "plan approval",
    "auto_create_pr": "automatic pull request",
}
MAX_FAN_OUT = 50


@dataclass(frozen=True)
class TemplateContent:
    name: str
    prompt: str
    title_pattern: str = ""
    repositories: tuple[str, ...] = ()
    branch: str = ""
    require_plan_approval: bool = True
    auto_create_pr: bool = False

    @classmethod
    def of(cls, version: TemplateVersion) -> TemplateContent:
        return cls(
            name=version.name,
            prompt=version.prompt,
            title_pattern=version.title_pattern,
            repositories=tuple(version.repositories),
            branch=version.branch,
            require_plan_approval=version.require_plan_approval,
            auto_create_pr=version.auto_create_pr,
        )


def _template_target(template: LaunchTemplate) -> Target:
    return Target("template", str(template.pk), template.name)


def check_text(*texts: str) -> None:
    if any("\x00" in text for text in texts):
        # PostgreSQL cannot store it in text or JSON; browsers never send it.
        raise ActionNotAllowed("The text contains a null character; remove it and save again.")


def _check_content(content: TemplateContent) -> None:
    if not content.name.strip():
        raise ActionNotAllowed("Name the template.")
    if not content.prompt.strip():
        raise ActionNotAllowed("Say what Jules should do: the prompt is empty.")
    if len(content.repositories) > MAX_FAN_OUT:
        raise ActionNotAllowed(f"A template fans out over at most {MAX_FAN_OUT} repositories.")
    check_text(content.name, content.prompt, content.title_pattern, content.branch)


def _new_version(
    template: LaunchTemplate, content: TemplateContent, user: Any, changed: list[str]
) -> TemplateVersion:
    number = (template.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version = TemplateVersion(
        template=template,
        number=number,
        author=user,
        changed=changed,
        **{**asdict(content), "repositories": list(content.repositories)},
    )
    version.save()
    template.current = version
    template.name = content.name
    template.save(update_fields=["current", "name", "updated_at"])
    return version


def _name_taken(team_id: int, name: str, exclude: int | None = None) -> bool:
    others = LaunchTemplate.objects.filter(team_id=team_id, name=name)
    if exclude is not None:
        others = others.exclude(pk=exclude)
    return others.exists()


def template_create(
    *, user: Any, team: Team, content: TemplateContent, request: HttpRequest | None = None
) -> LaunchTemplate:
    access.require(access.may_edit_templates(access.require_in_team(user, team.pk)))
    _check_content(content)
    with transaction.atomic():
        if _name_taken(team.pk, content.name):
            raise ActionNotAllowed(f"{team.name} already has a template called {content.name!r}.")
        template = LaunchTemplate.objects.create(team=team, name=content.name, created_by=user)
        _new_version(template, content, user, list(FIELDS))
        audit.record(
            AuditAction.TEMPLATE_CREATE,
            actor=user,
            team=team.pk,
            target=_template_target(template),
            details={"version": 1, "prompt": content.prompt[:500]},
            request=request,
        )
    return template


def template_update(
    *,
    user: Any,
    template: LaunchTemplate,
    content: TemplateContent,
    request: HttpRequest | None = None,
) -> TemplateVersion | None:
    """Save a new version with what changed; None when nothing did."""
    access.require(access.may_edit_templates(access.require_in_team(user, template.team_id)))
    _check_content(content)
    with transaction.atomic():
        locked = LaunchTemplate.objects.select_for_update().get(pk=template.pk)
        before = TemplateContent.of(locked.current) if locked.current else None
        changed = [
            name
            for name in FIELDS
            if before is None or getattr(before, name) != getattr(content, name)
        ]
        if not changed:
            return None
        if "name" in changed and _name_taken(locked.team_id, content.name, exclude=locked.pk):
            raise ActionNotAllowed(f"The team already has a template called {content.name!r}.")
        version = _new_version(locked, content, user, changed)
        audit.record(
            AuditAction.TEMPLATE_CHANGE,
            actor=user,
            team=locked.team_id,
            target=_template_target(locked),
            details={"version": version.number, "changed": changed},
            request=request,
        )
    return version


# --- launching ------------------------------------------------------------------------


@dataclass
class LaunchTarget:
    source: Source | None
    branch: str


def resolve_repositories(
    connection: JulesConnection, names: list[str], branch: str
) -> list[LaunchTarget]:
    """The connection's sources for the template's repositories, each with its branch."""
    if not names:
        return [LaunchTarget(None, "")]
    found = {s.name: s for s in Source.objects.filter(connection=connection, name__in=names)}
    absent = [name for name in names if name not in found]
    if absent:
        shown = ", ".join(name.removeprefix("sources/github/") for name in absent[:5])
        raise ActionNotAllowed(
            f"{connection.label} has not synced {shown}; pick another connection."
        )
    targets = []
    for name in names:
        source = found[name]
        chosen = branch or source.default_branch
        if not chosen:
            raise ActionNotAllowed(
                f"Name the branch Jules should start from in {source.full_name}."
            )
        if source.branches and chosen not in source.branches:
            raise ActionNotAllowed(f"{source.full_name} has no branch {chosen!r}.")
        targets.append(LaunchTarget(source, chosen))
    return targets


def clean_values(version: TemplateVersion, values: dict[str, Any]) -> dict[str, str]:
    """The values of the version's variables, checked; MissingVariables names the unfilled."""
    names = variables_in(version.prompt, version.title_pattern)
    cleaned = {name: str(values.get(name, "")).strip() for name in names}
    absent = missing(names, cleaned)
    if absent:
        raise MissingVariables(absent)
    for name, value in cleaned.items():
        if len(value) > MAX_VALUE_LENGTH:
            raise ActionNotAllowed(f"{name} is longer than {MAX_VALUE_LENGTH} characters.")
        check_text(value)
    return cleaned


def template_launch(
    *,
    user: Any,
    template: LaunchTemplate,
    connection: JulesConnection,
    values: dict[str, Any],
    repositories: list[str] | None = None,
    version: TemplateVersion | None = None,
    run: ScheduleRun | None = None,
    today: dt.date | None = None,
    any_connection: bool = False,
    request: HttpRequest | None = None,
) -> list[TemplateLaunch]:
    """One session per repository (fan-out), all or none, each recording its version.

    `any_connection`: each may start on any of the team's connections that has its
    repository (the launch queue's choice), not only on `connection`."""
    if user is None:
        raise ActionNotAllowed("Nobody to launch as: the person this ran as has left.")
    access.require(access.may_launch(access.require_in_team(user, template.team_id)))
    if connection.team_id != template.team_id:
        raise Http404("No such connection.")
    version = version or template.current
    if version is None:
        raise ActionNotAllowed("The template has no saved version.")
    cleaned = clean_values(version, values)
    names = list(version.repositories) if repositories is None else repositories
    targets = resolve_repositories(connection, names, version.branch)
    date = (today or timezone.now().date()).isoformat()
    launches = []
    with transaction.atomic():
        for target in targets:
            filled = {
                **cleaned,
                "repo": target.source.full_name if target.source else "",
                "branch": target.branch,
                "date": date,
            }
            action = session_services.session_launch(
                user=user,
                connection=connection,
                prompt=render(version.prompt, filled),
                title=render(version.title_pattern, filled)[:200],
                source_name=target.source.name if target.source else "",
                starting_branch=target.branch,
                require_plan_approval=version.require_plan_approval,
                auto_create_pr=version.auto_create_pr,
                any_connection=any_connection,
                request=request,
            )
            launches.append(
                TemplateLaunch.objects.create(
                    template=template,
                    version=version,
                    action=action,
                    run=run,
                    launched_by=user,
                    source_name=target.source.name if target.source else "",
                    variables=cleaned,
                )
            )
    return launches


def link_launched_sessions(limit: int = 500) -> int:
    """Record the session of each launch whose action has created it."""
    pending = list(
        TemplateLaunch.objects.filter(session__isnull=True, action__session__isnull=False)
        .select_related("action")
        .only("pk", "action__session_id")[:limit]
    )
    for launch in pending:
        launch.session_id = launch.action.session_id  # type: ignore[union-attr]
    TemplateLaunch.objects.bulk_update(pending, ["session"])
    return len(pending)
