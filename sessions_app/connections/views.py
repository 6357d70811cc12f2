"""Connection pages: a connection's sync status, adding one (from the team page), renaming
and removing it, rotating its key, disabling and enabling it. Viewers see; only the team's admins change, and the
services check again. Outsiders get a 404, too-low roles a 403 on POSTs.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling

from sessions_app import access
from sessions_app.access import ActionNotAllowed, RoleRequired
from sessions_app.connections import services
from sessions_app.connections.forms import ConnectionAddForm, ConnectionRenameForm, RotateKeyForm
from sessions_app.connections.selectors import (
    get_connection_for_user,
    removal_summary,
    sync_progress,
)
from sessions_app.connections.services import KeyRejected
from sessions_app.launch_queue.selectors import launch_caps_context
from sessions_app.models import JulesConnection, Role
from sessions_app.teams import views as teams_views
from sessions_app.web.request import AuthedRequest

CONNECTION_PAGE = "sessions_app/teams/connection_detail.html"


def _connection_for(request: AuthedRequest, pk: int, needed: str = Role.VIEWER) -> JulesConnection:
    try:
        return get_connection_for_user(request.user, pk, needed)
    except RoleRequired as exc:
        raise PermissionDenied("Only the team's admins may change its connections.") from exc


@require_POST
@sensitive_post_parameters("api_key")
def connection_add(request: AuthedRequest, slug: str) -> HttpResponse:
    team = teams_views.team_for(request, slug, Role.ADMIN)
    form = ConnectionAddForm(request.POST)
    if form.is_valid():
        try:
            connection = services.connection_add(
                actor=request.user,
                team=team,
                label=form.cleaned_data["label"],
                api_key=form.cleaned_data["api_key"],
                request=request,
            )
        except KeyRejected as exc:
            form.add_error("api_key", str(exc))
        except ActionNotAllowed as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request, f"Connection {connection.label} added; the first sync starts now."
            )
            return teams_views.team_response(request, team, "connections", ok=True)
    return teams_views.team_response(request, team, "connections", ok=False, connection_form=form)


def _connection_context(
    request: AuthedRequest, connection: JulesConnection, **extra: Any
) -> dict[str, Any]:
    role = access.role_in_team(request.user, connection.team_id) or Role.VIEWER
    return {
        "connection": connection,
        "progress": sync_progress(connection),
        "team": connection.team,
        "is_admin": bool(access.may_manage_connections(role)),
        "session_count": connection.sessions.count(),
        "source_count": connection.sources.count(),
        "rotate_form": extra.get("rotate_form") or RotateKeyForm(),
        "nav_active": "teams",
        **launch_caps_context(connection, extra.get("caps_form")),
    }


@require_GET
def connection_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    connection = _connection_for(request, pk)
    context = _connection_context(request, connection)
    if request.htmx and request.htmx.target == f"connection-{connection.pk}-status":
        response = render(request, f"{CONNECTION_PAGE}#sync-status", context)
        if not context["progress"].syncing:
            # The fragment comes without its trigger, and 286 tells htmx to stop polling.
            response.status_code = HttpResponseStopPolling.status_code
        return response
    return render(request, CONNECTION_PAGE, context)


@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("api_key")
def connection_rotate(request: AuthedRequest, pk: int) -> HttpResponse:
    connection = _connection_for(request, pk, Role.ADMIN)
    form = RotateKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.connection_rotate_key(
                actor=request.user,
                connection=connection,
                api_key=form.cleaned_data["api_key"],
                request=request,
            )
        except ActionNotAllowed as exc:
            form.add_error("api_key", str(exc))
        else:
            messages.success(request, "Key replaced; Jules accepted it.")
            return redirect("sessions_app:connection-detail", pk=connection.pk)
    template = CONNECTION_PAGE + ("#rotate" if request.htmx else "")
    return render(request, template, _connection_context(request, connection, rotate_form=form))


@require_POST
def connection_enabled(request: AuthedRequest, pk: int) -> HttpResponse:
    connection = _connection_for(request, pk, Role.ADMIN)
    choice = request.POST.get("enabled")
    if choice not in {"0", "1"}:
        return HttpResponseBadRequest(
            "Say whether to enable (enabled=1) or disable (enabled=0) the connection.",
            content_type="text/plain",
        )
    enabled = choice == "1"
    connection = services.connection_set_enabled(
        actor=request.user, connection=connection, enabled=enabled, request=request
    )
    state = "enabled; a sync starts now" if enabled else "disabled"
    messages.success(request, f"{connection.label} is {state}.")
    from_team_page = request.POST.get("from") == "team"
    if request.htmx:
        if from_team_page:
            return render(
                request,
                f"{teams_views.TEAM_PAGE}#connections",
                teams_views.team_context(request, connection.team),
            )
        return render(
            request, f"{CONNECTION_PAGE}#connection", _connection_context(request, connection)
        )
    if from_team_page:
        return redirect(
            reverse("sessions_app:team-detail", args=[connection.team.slug]) + "#connections"
        )
    return redirect("sessions_app:connection-detail", pk=connection.pk)


@require_POST
def connection_rename(request: AuthedRequest, pk: int) -> HttpResponse:
    connection = _connection_for(request, pk, Role.ADMIN)
    team = connection.team
    form = ConnectionRenameForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the connection a label of up to 100 characters.")
    else:
        try:
            renamed = services.connection_update(
                actor=request.user,
                connection=connection,
                changes={"label": form.cleaned_data["label"]},
                request=request,
            )
        except ActionNotAllowed as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"The connection is now called {renamed.label}.")
    return teams_views.team_response(request, team, "connections", ok=True)


@require_http_methods(["GET", "POST"])
def connection_remove(request: AuthedRequest, pk: int) -> HttpResponse:
    """GET: what removing deletes, to confirm; POST: remove it."""
    connection = _connection_for(request, pk, Role.ADMIN)
    team = connection.team
    if request.method == "POST":
        services.connection_delete(actor=request.user, connection=connection, request=request)
        messages.success(request, f"Connection {connection.label} removed.")
        url = reverse("sessions_app:team-detail", args=[team.slug]) + "#connections"
        return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    context = {
        "connection": connection,
        "team": team,
        "summary": removal_summary(connection),
        "nav_active": "teams",
    }
    return render(request, "sessions_app/teams/connection_remove.html", context)
