"""Template and schedule pages (docs/templates.md).

Viewers and above of a team read its templates and schedules; members and above create,
edit and launch; a schedule's creator or a team admin changes it. Outsiders get 404, too
low a role a 403 on the forms. Actions answer htmx with the fragment they changed and
anything else with a redirect.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from sessions_app import access
from sessions_app.access import ActionNotAllowed
from sessions_app.launch_templates import selectors, services, timing
from sessions_app.launch_templates.forms import (
    ScheduleForm,
    TemplateForm,
    TemplateLaunchForm,
)
from sessions_app.launch_templates.variables import MissingVariables, variables_in
from sessions_app.models import LaunchTemplate, Schedule, Source, TemplateLaunch
from sessions_app.sessions.forms import parse_id
from sessions_app.web.htmx import not_modified, render_versioned, stop_polling, unchanged
from sessions_app.web.request import AuthedRequest

PREVIEW_COUNT = 5
DIR = "launch_templates"


def _template(request: AuthedRequest, pk: int) -> tuple[LaunchTemplate, str]:
    template = selectors.get_template_for_user(request.user, pk)
    return template, access.require_in_team(request.user, template.team_id)


def _require_page(decision: access.Decision) -> None:
    if not decision:
        raise PermissionDenied(decision.reason)


def _done(request: AuthedRequest, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


# --- templates ------------------------------------------------------------------------


@require_GET
def template_list(request: AuthedRequest) -> HttpResponse:
    q = request.GET.get("q", "").replace("\x00", "").strip()[:200]
    templates = list(selectors.templates_for_user(request.user, q))
    context = {
        "templates": templates,
        "q": q,
        "may_create": selectors.editing_teams(request.user).exists(),
        "nav_active": "templates",
    }
    if request.htmx and request.htmx.target == "template-results":
        return render(request, f"{DIR}/template_list.html#results", context)
    return render(request, f"{DIR}/template_list.html", context)


def _open(launch: TemplateLaunch) -> bool:
    return launch.action is not None and launch.action.is_open


def _template_form(
    request: AuthedRequest, template: LaunchTemplate | None, **kwargs: Any
) -> TemplateForm:
    teams = selectors.editing_teams(request.user)
    team_ids = [template.team_id] if template else list(teams.values_list("pk", flat=True))
    return TemplateForm(
        teams=teams,
        sources=selectors.team_sources(team_ids),
        fixed_team=template.team if template else None,
        **kwargs,
    )


def _initial_from_launch(request: AuthedRequest) -> dict[str, Any]:
    """ "Save as template" from the launch form (posted here, not saved): what was typed."""
    posted = request.POST
    initial: dict[str, Any] = {
        "prompt": posted.get("prompt", "")[:20000],
        "title_pattern": posted.get("title", "")[:200],
        "require_plan_approval": posted.get("require_plan_approval") == "on",
        "auto_create_pr": posted.get("auto_create_pr") == "on",
    }
    source_id = parse_id(posted.get("source"))
    if source_id is not None:
        source = (
            Source.objects.filter(
                pk=source_id, connection__team__in=selectors.editing_teams(request.user)
            )
            .select_related("connection")
            .first()
        )
        if source is not None:
            initial["repositories"] = [source.name]
            initial["team"] = source.connection.team_id
            branch = posted.get("branch", "")[:250]
            if branch and branch != source.default_branch:
                initial["branch"] = branch
    return initial


@require_http_methods(["GET", "POST"])
def template_create(request: AuthedRequest) -> HttpResponse:
    if not selectors.editing_teams(request.user).exists():
        raise PermissionDenied("Creating templates needs the member role or above in a team.")
    if request.method == "POST" and request.POST.get("from_launch"):
        form = _template_form(request, None, initial=_initial_from_launch(request))
    elif request.method == "POST":
        form = _template_form(request, None, data=request.POST)
        if form.is_valid():
            try:
                template = services.template_create(
                    user=request.user,
                    team=form.cleaned_data["team"],
                    content=form.content(),
                    request=request,
                )
            except ActionNotAllowed as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Saved {template.name} as version 1.")
                return _done(request, reverse("sessions_app:template-detail", args=[template.pk]))
    else:
        form = _template_form(request, None, initial={"require_plan_approval": True})
    context = {"form": form, "template": None, "nav_active": "templates"}
    return render(request, f"{DIR}/template_form.html", context)


@require_GET
def template_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    template, role = _template(request, pk)
    launches = selectors.recent_launches(template)
    # The launches list follows launches on their way to Jules, then stops polling.
    waiting = any(launch.session_id is None and _open(launch) for launch in launches)
    if request.htmx and request.htmx.target == "launches":
        context = {"template": template, "launches": launches, "launches_waiting": waiting}
        response = render(request, f"{DIR}/template_detail.html#launches", context)
        return response if waiting else stop_polling(response)
    version = template.current
    context = {
        "template": template,
        "version": version,
        "variables": variables_in(version.prompt, version.title_pattern) if version else [],
        "versions": [
            (v, [services.FIELD_LABELS.get(name, name) for name in v.changed])
            for v in template.versions.select_related("author").order_by("-number")
        ],
        "launches": launches,
        "launches_waiting": waiting,
        "schedules": list(template.schedules.select_related("connection").order_by("name")),
        "may_edit": bool(access.may_edit_templates(role)),
        "may_launch": bool(access.may_launch(role)),
        "nav_active": "templates",
    }
    return render(request, f"{DIR}/template_detail.html", context)


@require_http_methods(["GET", "POST"])
def template_edit(request: AuthedRequest, pk: int) -> HttpResponse:
    template, role = _template(request, pk)
    _require_page(access.may_edit_templates(role))
    if request.method == "POST":
        form = _template_form(request, template, data=request.POST)
        if form.is_valid():
            try:
                version = services.template_update(
                    user=request.user, template=template, content=form.content(), request=request
                )
            except ActionNotAllowed as exc:
                form.add_error(None, str(exc))
            else:
                if version is None:
                    messages.info(request, "Nothing changed; no new version.")
                else:
                    messages.success(request, f"Saved {version.name} as version {version.number}.")
                return _done(request, reverse("sessions_app:template-detail", args=[template.pk]))
    else:
        current = template.current
        initial = {
            "name": template.name,
            "prompt": current.prompt if current else "",
            "title_pattern": current.title_pattern if current else "",
            "repositories": list(current.repositories) if current else [],
            "branch": current.branch if current else "",
            "require_plan_approval": current.require_plan_approval if current else True,
            "auto_create_pr": current.auto_create_pr if current else False,
        }
        form = _template_form(request, template, initial=initial)
    context = {"form": form, "template": template, "nav_active": "templates"}
    return render(request, f"{DIR}/template_form.html", context)


def _repository_choices(template: LaunchTemplate) -> list[tuple[str, str]]:
    names = list(template.current.repositories) if template.current else []
    labels = {name: label for _, name, label in selectors.team_sources([template.team_id])}
    return [(name, labels.get(name, name.removeprefix("sources/"))) for name in names]


@require_http_methods(["GET", "POST"])
def template_launch(request: AuthedRequest, pk: int) -> HttpResponse:
    template, role = _template(request, pk)
    _require_page(access.may_launch(role))
    version = template.current
    if version is None:
        raise PermissionDenied("The template has no saved version.")
    choices = _repository_choices(template)
    form_kwargs: dict[str, Any] = {
        "connections": selectors.launch_connections_for(request.user, template.team_id),
        "variables": variables_in(version.prompt, version.title_pattern),
        "repositories": choices,
    }
    if request.method == "POST":
        form = TemplateLaunchForm(request.POST, **form_kwargs)
        if form.is_valid():
            data = form.cleaned_data
            try:
                launches = services.template_launch(
                    user=request.user,
                    template=template,
                    connection=data["connection"],
                    values=form.variable_values(data),
                    repositories=data["repositories"] if choices else [],
                    version=version,
                    request=request,
                )
            except MissingVariables as exc:
                for name in exc.names:
                    form.add_error(f"var_{name}", f"Fill in {name}.")
            except ActionNotAllowed as exc:
                form.add_error(None, str(exc))
            else:
                if len(launches) == 1 and launches[0].action_id:
                    url = reverse("sessions_app:action-status", args=[launches[0].action_id])
                else:
                    messages.success(
                        request, f"Launched {len(launches)} sessions from {template.name}."
                    )
                    url = reverse("sessions_app:template-detail", args=[template.pk]) + "#launches"
                return _done(request, url)
    else:
        form = TemplateLaunchForm(initial={"repositories": [c[0] for c in choices]}, **form_kwargs)
    context = {
        "form": form,
        "template": template,
        "version": version,
        "fan_out": len(choices) > 1,
        "nav_active": "templates",
    }
    return render(request, f"{DIR}/template_launch.html", context)


# --- schedules ------------------------------------------------------------------------


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


def _spec(form: ScheduleForm) -> services.ScheduleSpec:
    data = form.cleaned_data
    return services.ScheduleSpec(
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
                    schedule = services.schedule_create(
                        user=request.user, template=template, spec=_spec(form), request=request
                    )
                    messages.success(request, f"Scheduled {schedule.name}.")
                else:
                    schedule = services.schedule_update(
                        user=request.user, schedule=schedule, spec=_spec(form), request=request
                    )
                    messages.success(request, f"Saved {schedule.name}.")
            except MissingVariables as exc:
                for name in exc.names:
                    form.add_error(f"var_{name}", f"Fill in {name}.")
            except ActionNotAllowed as exc:
                form.add_error(None, str(exc))
            else:
                return _done(request, reverse("sessions_app:schedule-detail", args=[schedule.pk]))
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
    template, role = _template(request, pk)
    _require_page(access.may_schedule(role))
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
    _require_page(access.may_change_schedule(role, request.user, schedule))
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
        "missing_variables": services.schedule_missing_variables(schedule),
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
        launch.the_session is None and _open(launch)
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
        _require_page(access.may_change_schedule(role, request.user, schedule))
        services.schedule_set_active(
            user=request.user, schedule=schedule, active=active, request=request
        )
        return f"Resumed {schedule.name}." if active else f"Paused {schedule.name}."

    return _schedule_action(request, pk, act)


@require_POST
def schedule_run_now(request: AuthedRequest, pk: int) -> HttpResponse:
    def act(schedule: Schedule) -> str:
        role = access.require_in_team(request.user, schedule.team_id)
        _require_page(access.may_change_schedule(role, request.user, schedule))
        run = services.schedule_run_now(user=request.user, schedule=schedule, request=request)
        return f"{run.get_status_display()}: {run.reason}"

    return _schedule_action(request, pk, act)
