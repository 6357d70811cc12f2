"""Template and schedule writes (docs/templates.md).

Each service asks `access`, writes in one transaction with its audit entry, and launches
only through `sessions.services.session_launch`, so every launch is an outbox action like
any other (and is queued, planned and approved like any other).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.http import Http404, HttpRequest
from django.utils import timezone

from sessions_app import access
from sessions_app.access import ActionNotAllowed
from sessions_app.audit import chain as audit
from sessions_app.audit.actions import AuditAction
from sessions_app.audit.chain import Target
from sessions_app.launch_templates import timing
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
    Schedule,
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

logger = logging.getLogger(__name__)


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


def _check_text(*texts: str) -> None:
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
    _check_text(content.name, content.prompt, content.title_pattern, content.branch)


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
        _check_text(value)
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
    request: HttpRequest | None = None,
) -> list[TemplateLaunch]:
    """One session per repository (fan-out), all or none, each recording its version."""
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


# --- schedules ------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    connection: JulesConnection
    cadence: str
    time_of_day: dt.time | None = None
    weekday: int | None = None
    cron: str = ""
    timezone: str = "UTC"
    variables: dict[str, str] = field(default_factory=dict)
    skip_if_running: bool = True


def _audit_schedule(
    action: str, user: Any, schedule: Schedule, details: dict[str, Any], request: HttpRequest | None
) -> None:
    audit.record(
        action,
        actor=user,
        team=schedule.team_id,
        target=Target("schedule", str(schedule.pk), schedule.name),
        details=details,
        request=request,
    )


def _checked_expression(spec: ScheduleSpec) -> str:
    try:
        expression = timing.cadence_expression(
            spec.cadence, at=spec.time_of_day, weekday=spec.weekday, cron=spec.cron
        )
        timing.zone(spec.timezone)
    except timing.BadSchedule as exc:
        raise ActionNotAllowed(str(exc)) from exc
    return expression


def _check_spec(template: LaunchTemplate, spec: ScheduleSpec) -> tuple[str, dict[str, str]]:
    if not spec.name.strip():
        raise ActionNotAllowed("Name the schedule.")
    _check_text(spec.name)
    if spec.connection.team_id != template.team_id:
        raise Http404("No such connection.")
    expression = _checked_expression(spec)
    if template.current is None:
        raise ActionNotAllowed("The template has no saved version.")
    return expression, clean_values(template.current, spec.variables)


def _spec_fields(spec: ScheduleSpec, expression: str, values: dict[str, str]) -> dict[str, Any]:
    return {
        "name": spec.name.strip(),
        "connection": spec.connection,
        "cadence": spec.cadence,
        "cron": expression,
        "time_of_day": spec.time_of_day if spec.cadence != Schedule.Cadence.CRON else None,
        "weekday": spec.weekday if spec.cadence == Schedule.Cadence.WEEKLY else None,
        "timezone": spec.timezone,
        "variables": values,
        "skip_if_running": spec.skip_if_running,
    }


def schedule_create(
    *,
    user: Any,
    template: LaunchTemplate,
    spec: ScheduleSpec,
    request: HttpRequest | None = None,
) -> Schedule:
    access.require(access.may_schedule(access.require_in_team(user, template.team_id)))
    expression, values = _check_spec(template, spec)
    with transaction.atomic():
        schedule = Schedule.objects.create(
            team_id=template.team_id,
            template=template,
            created_by=user,
            run_as=user,
            next_run_at=timing.next_run(expression, spec.timezone, timezone.now()),
            **_spec_fields(spec, expression, values),
        )
        _audit_schedule(
            AuditAction.SCHEDULE_CREATE,
            user,
            schedule,
            {"template": template.name, "cron": expression, "timezone": spec.timezone},
            request,
        )
    return schedule


def schedule_update(
    *, user: Any, schedule: Schedule, spec: ScheduleSpec, request: HttpRequest | None = None
) -> Schedule:
    role = access.require_in_team(user, schedule.team_id)
    access.require(access.may_change_schedule(role, user, schedule))
    expression, values = _check_spec(schedule.template, spec)
    with transaction.atomic():
        locked = Schedule.objects.select_for_update().get(pk=schedule.pk)
        fields = _spec_fields(spec, expression, values)
        changed = [name for name, value in fields.items() if getattr(locked, name) != value]
        if not changed:
            return locked
        for name, value in fields.items():
            setattr(locked, name, value)
        locked.run_as = user
        if locked.active:
            locked.next_run_at = timing.next_run(expression, spec.timezone, timezone.now())
        locked.save()
        _audit_schedule(
            AuditAction.SCHEDULE_CHANGE,
            user,
            locked,
            {"changed": changed, "cron": expression, "timezone": spec.timezone},
            request,
        )
    return locked


def schedule_set_active(
    *, user: Any, schedule: Schedule, active: bool, request: HttpRequest | None = None
) -> Schedule:
    """Pause or resume; a resumed schedule runs from its next slot (none missed in between)."""
    role = access.require_in_team(user, schedule.team_id)
    access.require(access.may_change_schedule(role, user, schedule))
    with transaction.atomic():
        locked = Schedule.objects.select_for_update().get(pk=schedule.pk)
        if locked.active == active:
            return locked
        locked.active = active
        locked.run_as = user
        locked.next_run_at = (
            timing.next_run(locked.cron, locked.timezone, timezone.now()) if active else None
        )
        locked.save(update_fields=["active", "run_as", "next_run_at", "updated_at"])
        action = AuditAction.SCHEDULE_RESUME if active else AuditAction.SCHEDULE_PAUSE
        _audit_schedule(action, user, locked, {}, request)
    return locked


def schedule_run_now(
    *, user: Any, schedule: Schedule, request: HttpRequest | None = None
) -> ScheduleRun:
    """Run at once as the person who asked; the overlap rule is theirs to judge."""
    role = access.require_in_team(user, schedule.team_id)
    access.require(access.may_change_schedule(role, user, schedule))
    # One run now a minute: a double click (or two people) makes one run.
    slot = timezone.now().replace(second=0, microsecond=0)
    with transaction.atomic():
        locked = Schedule.objects.select_for_update().get(pk=schedule.pk)
        run = _claim_and_run(
            locked, slot, trigger=ScheduleRun.Trigger.MANUAL, actor=user, overlap=False
        )
    if run is None:
        raise ActionNotAllowed("This schedule already ran this minute; see its history.")
    return run


# --- the beat task's work -------------------------------------------------------------


def catch_up_window() -> dt.timedelta:
    return dt.timedelta(hours=settings.SCHEDULE_CATCH_UP_HOURS)


def run_due_schedules(now: dt.datetime | None = None, limit: int = 200) -> list[ScheduleRun]:
    """Run every schedule whose next slot has come; the runs made (docs/templates.md)."""
    now = now or timezone.now()
    link_launched_sessions()
    due = list(
        Schedule.objects.filter(active=True, next_run_at__lte=now)
        .order_by("next_run_at")
        .values_list("pk", flat=True)[:limit]
    )
    runs = []
    for schedule_id in due:
        try:
            run = run_schedule(schedule_id, now=now)
        except Exception:
            # One schedule's bug or a database hiccup must not hold up the others; its
            # slot is still unclaimed (the transaction rolled back), so the next tick retries.
            logger.exception("Running schedule %s failed unexpectedly", schedule_id)
            continue
        if run is not None:
            runs.append(run)
    return runs


def run_schedule(schedule_id: int, *, now: dt.datetime) -> ScheduleRun | None:
    """Claim the schedule's latest due slot and run it, in one transaction with advancing
    the schedule: a crash before the commit leaves the slot to the next tick, and the
    unique (schedule, slot) row keeps a second tick from running it again."""
    with transaction.atomic():
        schedule = (
            Schedule.objects.select_for_update(skip_locked=True)
            .filter(pk=schedule_id, active=True, next_run_at__lte=now)
            .first()
        )
        if schedule is None or schedule.next_run_at is None:
            return None
        try:
            slot, missed = timing.latest_due(
                schedule.cron, schedule.timezone, schedule.next_run_at, now
            )
            schedule.next_run_at = timing.next_run(schedule.cron, schedule.timezone, now)
        except timing.BadSchedule as exc:
            schedule.active, schedule.next_run_at = False, None
            schedule.save(update_fields=["active", "next_run_at", "updated_at"])
            return _record(schedule, now, ScheduleRun.Status.FAILED, f"Paused: {exc}")
        schedule.save(update_fields=["next_run_at", "updated_at"])
        note = f" ({missed} earlier slots were missed while nothing ran.)" if missed else ""
        if now - slot > catch_up_window():
            return _record(
                schedule,
                slot,
                ScheduleRun.Status.SKIPPED,
                "Missed: the scheduler was not running for longer than "
                f"{settings.SCHEDULE_CATCH_UP_HOURS} hours after this slot.{note}",
            )
        return _claim_and_run(
            schedule,
            slot,
            trigger=ScheduleRun.Trigger.SCHEDULE,
            actor=schedule.run_as,
            overlap=schedule.skip_if_running,
            note=note.strip(),
        )


def _record(schedule: Schedule, slot: dt.datetime, status: str, reason: str) -> ScheduleRun | None:
    try:
        with transaction.atomic():
            return ScheduleRun.objects.create(
                schedule=schedule, slot=slot, status=status, reason=reason
            )
    except IntegrityError:
        return None


def schedule_missing_variables(schedule: Schedule) -> list[str]:
    """Variables the template's newest version needs that the schedule has no value for."""
    version = schedule.template.current
    if version is None:
        return []
    return missing(variables_in(version.prompt, version.title_pattern), schedule.variables)


def still_running(schedule: Schedule, exclude: int) -> str:
    """Why the previous launched run still counts as active ("" when it does not)."""
    previous = (
        ScheduleRun.objects.filter(schedule=schedule, status=ScheduleRun.Status.LAUNCHED)
        .exclude(pk=exclude)
        .order_by("-created_at", "-pk")
        .first()
    )
    if previous is None:
        return ""
    for launch in previous.launches.select_related("action", "session", "action__session"):
        session = launch.the_session
        if session is None:
            if launch.action is not None and launch.action.is_open:
                return "the previous run's launch is still on its way to Jules."
        elif session.can_change:
            state = session.get_state_display().lower()
            return f"the previous run's session “{session.display_title}” is still {state}."
    return ""


def _claim_and_run(
    schedule: Schedule,
    slot: dt.datetime,
    *,
    trigger: str,
    actor: Any,
    overlap: bool,
    note: str = "",
) -> ScheduleRun | None:
    """The run of one slot, or None when another tick already claimed it."""
    template = schedule.template
    try:
        with transaction.atomic():
            run = ScheduleRun.objects.create(
                schedule=schedule,
                slot=slot,
                trigger=trigger,
                status=ScheduleRun.Status.LAUNCHED,
                version=template.current,
                actor=actor,
            )
    except IntegrityError:
        return None
    why = still_running(schedule, exclude=run.pk) if overlap else ""
    if schedule.connection is None:
        run.status = ScheduleRun.Status.FAILED
        run.reason = "The schedule's connection was removed; edit the schedule to pick another."
    elif why:
        run.status, run.reason = ScheduleRun.Status.SKIPPED, f"Skipped: {why}"
    else:
        try:
            with transaction.atomic():
                launches = template_launch(
                    user=actor,
                    template=template,
                    connection=schedule.connection,
                    values=schedule.variables,
                    run=run,
                    today=slot.astimezone(timing.zone(schedule.timezone)).date(),
                )
        except (ActionNotAllowed, MissingVariables) as exc:
            run.status, run.reason = ScheduleRun.Status.FAILED, str(exc)
        except Http404:
            run.status = ScheduleRun.Status.FAILED
            run.reason = "The person this schedule runs as is no longer in the team."
        else:
            run.reason = f"{len(launches)} session(s) launched. {note}".strip()
    run.save(update_fields=["status", "reason"])
    manual = trigger == ScheduleRun.Trigger.MANUAL
    audit.record(
        AuditAction.SCHEDULE_RUN,
        actor=actor if manual else None,
        actor_label="" if manual else "schedule",
        team=schedule.team_id,
        target=Target("schedule", str(schedule.pk), schedule.name),
        details={"slot": slot.isoformat(), "status": run.status, "reason": run.reason[:500]},
    )
    return run
