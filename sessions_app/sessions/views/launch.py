"""Launching a session, and the page that follows the launch until Jules has created it.

The form posts to `services.session_launch`, which queues an outbox action; the person then
watches that action at `actions/<uuid>/`, whose fragment polls until delivery created the
session and then sends the browser there (or shows why Jules said no, with a way back to
the form as it was filled in).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from sessions_app.access import ActionNotAllowed
from sessions_app.launch_queue.rerun import rerun_initial, rerun_source
from sessions_app.models import JulesConnection, Membership, OutboxAction, Role, Source
from sessions_app.sessions import services
from sessions_app.sessions.forms import LaunchForm, parse_id
from sessions_app.web.htmx import stop_polling
from sessions_app.web.request import AuthedRequest

TEMPLATE = "sessions_app/launch.html"
SOURCE_FILTER_LIMIT = 500


def launch_connections(user: Any) -> QuerySet[JulesConnection]:
    """Enabled connections of the teams where the user is a member or above."""
    teams = Membership.objects.filter(
        user=user, role__in=[Role.MEMBER, Role.APPROVER, Role.ADMIN]
    ).values("team_id")
    return (
        JulesConnection.objects.filter(enabled=True, team_id__in=teams)
        .select_related("team")
        .order_by("team__name", "label")
    )


def _pick(connections: list[JulesConnection], value: Any) -> JulesConnection | None:
    for connection in connections:
        if str(connection.pk) == str(value):
            return connection
    return connections[0] if connections else None


def _sources(connection: JulesConnection | None, search: str = "") -> QuerySet[Source]:
    if connection is None:
        return Source.objects.none()
    sources = Source.objects.filter(connection=connection).order_by("owner", "repo")
    if search:
        sources = sources.filter(Q(repo__icontains=search) | Q(owner__icontains=search))
    return sources.only("id", "owner", "repo", "source_id", "default_branch", "branches")


def _retry_initial(request: AuthedRequest, action_id: str) -> dict[str, Any]:
    """The form as a failed launch had it, so trying again needs no retyping."""
    try:
        pk = uuid.UUID(action_id)
    except ValueError:
        return {}
    action = OutboxAction.objects.filter(
        pk=pk, actor=request.user, kind=OutboxAction.Kind.LAUNCH
    ).first()
    if action is None:
        return {}
    payload = action.payload
    source = Source.objects.filter(
        connection_id=action.connection_id, name=payload.get("source") or ""
    ).first()
    return {
        "connection": action.connection_id,
        "source": str(source.pk) if source else "",
        "branch": payload.get("starting_branch", ""),
        "prompt": payload.get("prompt", ""),
        "title": payload.get("title", ""),
        "require_plan_approval": bool(payload.get("require_plan_approval", True)),
        "auto_create_pr": payload.get("automation_mode") == "AUTO_CREATE_PR",
    }


def _context(
    form: LaunchForm, connections: list[JulesConnection], search: str = ""
) -> dict[str, Any]:
    connection = _pick(connections, form["connection"].value())
    sources = list(_sources(connection, search)[:SOURCE_FILTER_LIMIT])
    chosen = str(form["source"].value() or "")
    source = next((s for s in sources if str(s.pk) == chosen), None)
    chosen_id = parse_id(chosen)
    if source is None and chosen_id is not None and connection is not None:
        source = Source.objects.filter(connection=connection, pk=chosen_id).first()
    return {
        "form": form,
        "rerun": rerun_source(None, form["rerun_of"].value(), check=False),
        "connections": connections,
        "connection": connection,
        "sources": sources,
        "source": source,
        "branch": str(form["branch"].value() or ""),
        "forced_approval": bool(connection and connection.team.require_plan_approval),
        "require_approval": bool(form["require_plan_approval"].value()),
        "search": search,
        "nav_active": "launch",
    }


@require_http_methods(["GET", "POST"])
def session_launch(request: AuthedRequest) -> HttpResponse:
    connections = list(launch_connections(request.user))
    if request.method == "POST":
        form = LaunchForm(request.POST, connections=launch_connections(request.user))
        if form.is_valid():
            data = form.cleaned_data
            source: Source | None = data["source"]
            try:
                action = services.session_launch(
                    user=request.user,
                    connection=data["connection"],
                    prompt=data["prompt"],
                    title=data.get("title", ""),
                    source_name=source.name if source else "",
                    starting_branch=data["branch"] if source else "",
                    require_plan_approval=bool(data.get("require_plan_approval")),
                    auto_create_pr=bool(data.get("auto_create_pr")),
                    request=request,
                    any_connection=bool(data.get("any_connection")),
                    rerun_of=rerun_source(request, data.get("rerun_of")),
                )
            except ActionNotAllowed as exc:
                form.add_error(None, str(exc))
            else:
                url = reverse("sessions_app:action-status", args=[action.pk])
                return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
        return render(request, TEMPLATE, _context(form, connections), status=200)
    initial: dict[str, Any] = {"require_plan_approval": True}
    if request.GET.get("retry"):
        initial.update(_retry_initial(request, request.GET["retry"]))
    if request.GET.get("rerun"):
        initial.update(rerun_initial(request, request.GET["rerun"]))
    # The htmx refreshes of the form's parts send the fields they depend on.
    for name in ("connection", "source"):
        if request.GET.get(name):
            initial[name] = request.GET[name]
    form = LaunchForm(initial=initial, connections=launch_connections(request.user))
    # PostgreSQL text cannot hold NUL; a search for one finds what the rest would.
    search = request.GET.get("source_q", "").replace("\x00", "").strip()[:100]
    context = _context(form, connections, search)
    template = TEMPLATE
    if request.htmx and request.htmx.target == "launch-repo-fields":
        template += "#repo-fields"
    elif request.htmx and request.htmx.target == "id_source":
        template += "#source-options"
    return render(request, template, context)


@require_GET
def launch_branches(request: AuthedRequest) -> HttpResponse:
    """The branch field for the chosen repository (a free field for a repoless session)."""
    raw = request.GET.get("source", "")
    source = None
    if (source_id := parse_id(raw)) is not None:
        source = Source.objects.filter(
            pk=source_id, connection__in=launch_connections(request.user)
        ).first()
    return render(request, f"{TEMPLATE}#branches", {"source": source, "branch": ""})


@require_GET
def action_status(request: AuthedRequest, pk: str) -> HttpResponse:
    """Where an action of the user's stands; a delivered launch moves on to its session."""
    action = (
        OutboxAction.objects.select_related("session", "connection")
        .filter(pk=pk, actor=request.user)
        .first()
    )
    if action is None:
        raise Http404("No such action.")
    if action.session_id and action.status == OutboxAction.Status.DONE:
        url = reverse("sessions_app:session-detail", args=[action.session_id])
        return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    context = {"action": action, "nav_active": "launch"}
    if not request.htmx:
        return render(request, "sessions_app/action_status.html", context)
    response = render(request, "sessions_app/action_status.html#status", context)
    return response if action.is_open else stop_polling(response)
