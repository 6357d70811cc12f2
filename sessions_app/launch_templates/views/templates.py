"""Template pages: the list with its search, create and edit (each save a version),
the detail with its versions and recent launches, and launching with variables and
fan-out (docs/templates.md).

Viewers and above of a team read its templates; members and above create, edit and
launch. Outsiders get 404, too low a role a 403.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from sessions_app import access
from sessions_app.access import ActionNotAllowed
from sessions_app.launch_templates import selectors, services
from sessions_app.launch_templates.forms import TemplateForm, TemplateLaunchForm
from sessions_app.launch_templates.variables import MissingVariables, variables_in
from sessions_app.launch_templates.views.common import (
    DIR,
    done,
    launch_open,
    require_page,
    template_for,
)
from sessions_app.models import LaunchTemplate, Source
from sessions_app.sessions.forms import parse_id
from sessions_app.web.htmx import stop_polling
from sessions_app.web.request import AuthedRequest


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
                return done(request, reverse("sessions_app:template-detail", args=[template.pk]))
    else:
        form = _template_form(request, None, initial={"require_plan_approval": True})
    context = {"form": form, "template": None, "nav_active": "templates"}
    return render(request, f"{DIR}/template_form.html", context)


@require_GET
def template_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    template, role = template_for(request, pk)
    launches = selectors.recent_launches(template)
    # The launches list follows launches on their way to Jules, then stops polling.
    waiting = any(launch.session_id is None and launch_open(launch) for launch in launches)
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
    template, role = template_for(request, pk)
    require_page(access.may_edit_templates(role))
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
                return done(request, reverse("sessions_app:template-detail", args=[template.pk]))
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
    template, role = template_for(request, pk)
    require_page(access.may_launch(role))
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
                    any_connection=data["any_connection"],
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
                return done(request, url)
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
