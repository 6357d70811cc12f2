"""Schedule pages: the list, create and edit with a preview of the next runs, the detail
with its polled history, and pause, resume and run now (docs/templates.md).

Viewers and above read a team's schedules; a schedule's creator or a team admin changes
it. Outsiders get 404, too low a role a 403. Actions answer htmx with the fragment they
changed and anything else with a redirect.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from sessions_app import access
from sessions_app.access import ActionNotAllowed
from sessions_app.launch_templates import schedules, selectors, timing
from sessions_app.launch_templates.forms import ScheduleForm
from sessions_app.launch_templates.variables import MissingVariables, variables_in
from sessions_app.launch_templates.views.common import (
    DIR,
    done,
    launch_open,
    require_page,
    template_for,
)
from sessions_app.models import LaunchTemplate, Schedule
from sessions_app.sessions.forms import parse_id
from sessions_app.web.htmx import not_modified, render_versioned, stop_polling, unchanged
from sessions_app.web.request import AuthedRequest

PREVIEW_COUNT = 5


def _schedule(request: AuthedRequest, pk: int) -> tuple[Schedule, str]:
    schedule = selectors.get_schedule_for_user(request.user, pk)
    return schedule, access.require_in_team(request.user, schedule.team_id)


@require_GET
def schedule_list(request: AuthedRequest) -> HttpResponse:
    context = {
        "schedules": list(selectors.schedules_for_user(request.user)),
        "nav_active": "templates",
    }
    return render(request, f"{DIR}/schedule_list.html", context)


def _preview(data: dict[str, Any]) -> dict[str, Any]:
    """The next runs of what the form holds, or why there are none."""
    try:
        expression = timing.cadence_expression(
            str(data.get("cadence") or ""),
            at=_time(data.get("time_of_day")),
            weekday=parse_id(data.get("weekday")),
            cron=str(data.get("cron") or ""),
        )
        zone_name = str(data.get("timezone") or "UTC").strip()
        runs = timing.next_runs(expression, zone_name, timezone.now(), PREVIEW_COUNT)
        tz = timing.zone(zone_name)
    except timing.BadSchedule as exc:
        return {"preview_error": str(exc), "preview_runs": []}
    return {
        "preview_error": "",
        "preview_expression": expression,
        "preview_zone": zone_name,
        "preview_runs": [run.astimezone(tz) for run in runs],
    }


def _time(value: Any) -> dt.time | None:
    if isinstance(value, dt.time):
        return value
    try:
        return dt.time.fromisoformat(str(value or "").strip()[:8])
    except ValueError:
        return None


@require_GET
def schedule_preview(request: AuthedRequest) -> HttpResponse:
    return render(request, f"{DIR}/schedule_form.html#preview", _preview(request.GET.dict()))


def _spec(form: ScheduleForm) -> schedules.ScheduleSpec:
    data = form.cleaned_data
    return schedules.ScheduleSpec(
        name=data["name"].strip(),
        connection=data["connection"],
        cadence=data["cadence"],
        time_of_day=data.get("time_of_day"),
        weekday=data.get("weekday"),
        cron=data.get("cron") or "",
        timezone=data["timezone"],
        variables=form.variable_values(data),
        skip_if_running=bool(data.get("skip_if_running")),
    )


def _schedule_form_page(
    request: AuthedRequest,
    template: LaunchTemplate,
    schedule: Schedule | None,
    initial: dict[str, Any],
) -> HttpResponse:
    version = template.current
    kwargs: dict[str, Any] = {
        "connections": selectors.launch_connections_for(request.user, template.team_id),
        "variables": variables_in(version.prompt, version.title_pattern) if version else [],
    }
    preview: dict[str, Any] = _preview(initial)
    if request.method == "POST":
        form = ScheduleForm(request.POST, **kwargs)
        preview = _preview(request.POST.dict())
        if "preview" not in request.POST and form.is_valid():
            try:
                if schedule is None:
                    schedule = schedules.schedule_create(
                        user=request.user, template=template, spec=_spec(form), request=request
                    )
                    messages.success(request, f"Scheduled {schedule.name}.")
                else:
                    schedule = schedules.schedule_update(
                        user=request.user, schedule=schedule, spec=_spec(form), request=request
                    )
                    messages.success(request, f"Saved {schedule.name}.")
            except MissingVariables as exc:
                for name in exc.names:
                    form.add_error(f"var_{name}", f"Fill in {name}.")
            except ActionNotAllowed as exc:
                form.add_error(None, str(exc))
            else:
                return done(request, reverse("sessions_app:schedule-detail", args=[schedule.pk]))
    else:
        form = ScheduleForm(initial=initial, **kwargs)
    context = {
        "form": form,
        "template": template,
        "schedule": schedule,
        "zones": timing.zone_choices(),
        "nav_active": "templates",
        **preview,
    }
    return render(request, f"{DIR}/schedule_form.html", context)


@require_http_methods(["GET", "POST"])
def schedule_create(request: AuthedRequest, pk: int) -> HttpResponse:
    template, role = template_for(request, pk)
    require_page(access.may_schedule(role))
    initial = {
        "name": template.name,
        "cadence": "daily",
        "time_of_day": "09:00",
        "weekday": 1,
        "timezone": "UTC",
        "skip_if_running": True,
    }
    return _schedule_form_page(request, template, None, initial)


@require_http_methods(["GET", "POST"])
def schedule_edit(request: AuthedRequest, pk: int) -> HttpResponse:
    schedule, role = _schedule(request, pk)
    require_page(access.may_change_schedule(role, request.user, schedule))
    initial: dict[str, Any] = {
        "name": schedule.name,
        "connection": schedule.connection_id,
        "cadence": schedule.cadence,
        "time_of_day": schedule.time_of_day.strftime("%H:%M") if schedule.time_of_day else "",
        "weekday": schedule.weekday if schedule.weekday is not None else 1,
        "cron": schedule.cron if schedule.cadence == Schedule.Cadence.CRON else "",
        "timezone": schedule.timezone,
        "skip_if_running": schedule.skip_if_running,
        **{f"var_{k}": v for k, v in schedule.variables.items()},
    }
    return _schedule_form_page(request, schedule.template, schedule, initial)


def _schedule_context(request: AuthedRequest, schedule: Schedule, role: str) -> dict[str, Any]:
    tz = timing.zone(schedule.timezone)
    upcoming = (
        timing.next_runs(schedule.cron, schedule.timezone, timezone.now(), PREVIEW_COUNT)
        if schedule.active
        else []
    )
    context = {
        "schedule": schedule,
        "upcoming": [run.astimezone(tz) for run in upcoming],
        "may_change": bool(access.may_change_schedule(role, request.user, schedule)),
        "missing_variables": schedules.schedule_missing_variables(schedule),
        "nav_active": "templates",
    }
    return context | _runs_context(request, schedule)


def _runs_context(request: AuthedRequest, schedule: Schedule) -> dict[str, Any]:
    runs = list(
        schedule.runs.select_related("version", "actor")
        .prefetch_related("launches__session", "launches__action__session")
        .order_by("-created_at")[:50]
    )
    # New runs come while the schedule is active; a paused one changes only as its last
    # launches reach Jules.
    live = schedule.active or any(
        launch.the_session is None and launch_open(launch)
        for run in runs
        for launch in run.launches.all()
    )
    context = {"schedule": schedule, "runs": runs, "runs_live": live}
    html, version = render_versioned(request, f"{DIR}/schedule_detail.html#runs", context)
    return {**context, "runs_html": html, "runs_version": version}


@require_GET
def schedule_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    schedule, role = _schedule(request, pk)
    if request.htmx and request.htmx.target == "runs":
        runs = _runs_context(request, schedule)
        if runs["runs_live"] and unchanged(request, runs["runs_version"]):
            return not_modified()
        response = HttpResponse(runs["runs_html"])
        return response if runs["runs_live"] else stop_polling(response)
    context = _schedule_context(request, schedule, role)
    if request.htmx and request.htmx.target == "schedule-state":
        return render(request, f"{DIR}/schedule_detail.html#state", context)
    return render(request, f"{DIR}/schedule_detail.html", context)


def _schedule_action(request: AuthedRequest, pk: int, act: Any) -> HttpResponse:
    schedule, role = _schedule(request, pk)
    try:
        note = act(schedule)
    except ActionNotAllowed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, note)
    url = reverse("sessions_app:schedule-detail", args=[schedule.pk])
    if not request.htmx:
        return redirect(url)
    schedule.refresh_from_db()
    return render(
        request, f"{DIR}/schedule_detail.html#state", _schedule_context(request, schedule, role)
    )


@require_POST
def schedule_active(request: AuthedRequest, pk: int) -> HttpResponse:
    active = request.POST.get("active") == "1"

    def act(schedule: Schedule) -> str:
        role = access.require_in_team(request.user, schedule.team_id)
        require_page(access.may_change_schedule(role, request.user, schedule))
        schedules.schedule_set_active(
            user=request.user, schedule=schedule, active=active, request=request
        )
        return f"Resumed {schedule.name}." if active else f"Paused {schedule.name}."

    return _schedule_action(request, pk, act)


@require_POST
def schedule_run_now(request: AuthedRequest, pk: int) -> HttpResponse:
    def act(schedule: Schedule) -> str:
        role = access.require_in_team(request.user, schedule.team_id)
        require_page(access.may_change_schedule(role, request.user, schedule))
        run = schedules.schedule_run_now(user=request.user, schedule=schedule, request=request)
        return f"{run.get_status_display()}: {run.reason}"

    return _schedule_action(request, pk, act)
