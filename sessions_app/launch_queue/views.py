"""The team's launch queue page, cancelling and moving a launch, a connection's caps.

The page polls while launches wait (docs/launch-queue.md); every action is a POST form
that answers the updated fragment to htmx and redirects otherwise.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from sessions_app import access
from sessions_app.access import ActionNotAllowed
from sessions_app.connections.selectors import get_connection_for_user
from sessions_app.launch_queue import selectors, services
from sessions_app.launch_queue.forms import CapsForm
from sessions_app.models import Role, Team
from sessions_app.teams.selectors import get_team_for_user
from sessions_app.web.htmx import not_modified, stop_polling
from sessions_app.web.request import AuthedRequest

QUEUE_PAGE = "sessions_app/launch_queue/queue.html"
CAPS_PART = "sessions_app/launch_queue/caps.html"


def _queue_response(request: AuthedRequest, team: Team) -> HttpResponse:
    role = access.role_in_team(request.user, team.pk)
    view = selectors.team_queue(team, request.user, role)
    context = {"team": team, "queue": view, "role": role, "nav_active": "teams"}
    if not request.htmx:
        return render(request, QUEUE_PAGE, context)
    if request.GET.get("v") == view.version and request.htmx.trigger == "queue":
        return not_modified()
    response = render(request, f"{QUEUE_PAGE}#queue", context)
    return response if view.entries else stop_polling(response)


@require_GET
def team_queue(request: AuthedRequest, slug: str) -> HttpResponse:
    return _queue_response(request, get_team_for_user(request.user, slug))


@require_POST
def queue_cancel(request: AuthedRequest, pk: str) -> HttpResponse:
    ticket = selectors.ticket_for_user(request.user, pk)
    try:
        services.ticket_cancel(user=request.user, ticket=ticket, request=request)
    except ActionNotAllowed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "The launch was taken out of the queue.")
    return _after(request, ticket.team)


@require_POST
def queue_move(request: AuthedRequest, pk: str) -> HttpResponse:
    ticket = selectors.ticket_for_user(request.user, pk)
    try:
        services.ticket_move(
            user=request.user,
            ticket=ticket,
            direction=request.POST.get("direction", ""),
            request=request,
        )
    except ActionNotAllowed as exc:
        messages.error(request, str(exc))
    return _after(request, ticket.team)


def _after(request: AuthedRequest, team: Team) -> HttpResponse:
    if request.htmx:
        return _queue_response(request, team)
    return redirect("sessions_app:team-queue", slug=team.slug)


@require_POST
def connection_caps(request: AuthedRequest, pk: int) -> HttpResponse:
    try:
        connection = get_connection_for_user(request.user, pk, Role.ADMIN)
    except access.RoleRequired as exc:
        raise PermissionDenied("Only the team's admins may set launch caps.") from exc
    form = CapsForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.caps_update(
                user=request.user,
                connection=connection,
                tier=data.get("tier") or "",
                daily_cap=data.get("daily_cap"),
                concurrent_cap=data.get("concurrent_cap"),
                max_in_flight=data.get("max_in_flight"),
                request=request,
            )
        except ActionNotAllowed as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Launch caps saved.")
            url = reverse("sessions_app:connection-detail", args=[connection.pk])
            if not request.htmx:
                return redirect(url)
            form = CapsForm.for_caps(selectors.gate.caps_for(connection.pk))
    if request.htmx:
        use, _ = selectors.connection_use(connection, timezone.now())
        context = {"connection": connection, "queue_use": use, "caps_form": form, "is_admin": True}
        return render(request, CAPS_PART, context)
    # Without htmx the whole page comes back, with the form as it was filled in.
    from sessions_app.connections.views import CONNECTION_PAGE, _connection_context

    return render(
        request, CONNECTION_PAGE, _connection_context(request, connection, caps_form=form)
    )
