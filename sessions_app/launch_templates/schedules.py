"""Schedule writes and the beat task's work: each due slot claimed once (docs/templates.md).

Runs launch through `services.template_launch`, and so through `session_launch`, like any
other launch from a template.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest
from django.utils import timezone

from sessions_app import access
from sessions_app.access import ActionNotAllowed
from sessions_app.audit import chain as audit
from sessions_app.audit.actions import AuditAction
from sessions_app.audit.chain import Target
from sessions_app.launch_templates import timing
from sessions_app.launch_templates.services import (
    check_text,
    clean_values,
    link_launched_sessions,
    template_launch,
)
from sessions_app.launch_templates.variables import MissingVariables, missing, variables_in
from sessions_app.models import JulesConnection, LaunchTemplate, Schedule, ScheduleRun

logger = logging.getLogger(__name__)


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
    check_text(spec.name)
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
        # A racing tick waits here, then re-reads the advanced slot and finds nothing due.
        # Not SKIP LOCKED: with it, racing ticks left due schedules unrun
        # (tests/integration/test_schedules.py caught it on PostgreSQL).
        schedule = (
            Schedule.objects.select_for_update()
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
