"""Team pages: the teams list, a team's members, connections and policy, a connection's
sync status, and the admin-only forms that change them.

Viewers and above see a team; only its admins see and use the forms, and the services
check again. Outsiders get a 404 for every URL, too-low roles a 403 on POSTs. Every POST
answers htmx with the fragment it changed and anything else with a redirect (or the page
with the form's errors).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Prefetch
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling

from sessions_app.models import JulesConnection, Membership, Role, Team
from sessions_app.models.teams import role_at_least
from sessions_app.sessions import services
from sessions_app.sessions.selectors import (
    RoleRequired,
    get_connection_for_user,
    get_team_for_user,
    memberships_for_user,
    role_in_team,
)
from sessions_app.teams.forms import (
    ConnectionAddForm,
    MemberAddForm,
    PolicyForm,
    RoleForm,
    RotateKeyForm,
)
from sessions_app.web.request import AuthedRequest

TEAM_PAGE = "sessions_app/teams/team_detail.html"
CONNECTION_PAGE = "sessions_app/teams/connection_detail.html"

PHASES = {
    "starting": "Starting",
    "sources": "Reading the repositories",
    "sessions": "Listing sessions",
    "refresh": "Re-reading sessions that can still change",
    "activities": "Reading new activity",
}


def _team_for(request: AuthedRequest, slug: str, needed: str = Role.VIEWER) -> Team:
    try:
        return get_team_for_user(request.user, slug, needed)
    except RoleRequired as exc:
        raise PermissionDenied("Only the team's admins may change it.") from exc


def _connection_for(request: AuthedRequest, pk: int, needed: str = Role.VIEWER) -> JulesConnection:
    try:
        return get_connection_for_user(request.user, pk, needed)
    except RoleRequired as exc:
        raise PermissionDenied("Only the team's admins may change its connections.") from exc


def _decorate(connection: JulesConnection) -> JulesConnection:
    """Attach what the status fragment shows: whether a sync runs now, and its phase."""
    now = timezone.now()
    claimed = connection.sync_claimed_until is not None and connection.sync_claimed_until > now
    connection.syncing = claimed and bool(connection.sync_phase)  # type: ignore[attr-defined]
    connection.phase_words = PHASES.get(  # type: ignore[attr-defined]
        connection.sync_phase, connection.sync_phase.capitalize()
    )
    return connection


def _team_context(request: AuthedRequest, team: Team, **forms: Any) -> dict[str, Any]:
    role = role_in_team(request.user, team.pk) or Role.VIEWER
    memberships = list(
        Membership.objects.filter(team=team).select_related("user").order_by("user__username")
    )
    connections = [
        _decorate(c)
        for c in JulesConnection.objects.filter(team=team)
        .select_related("added_by")
        .annotate(session_count=Count("sessions"))
        .order_by("label")
    ]
    return {
        "team": team,
        "role": role,
        "is_admin": role_at_least(role, Role.ADMIN),
        "memberships": memberships,
        "admin_count": sum(1 for m in memberships if m.role == Role.ADMIN),
        "roles": Role.choices,
        "connections": connections,
        "member_form": forms.get("member_form") or MemberAddForm(),
        "connection_form": forms.get("connection_form") or ConnectionAddForm(),
        "policy_form": forms.get("policy_form")
        or PolicyForm(
            initial={
                "require_plan_approval": team.require_plan_approval,
                "forbid_self_approval": team.forbid_self_approval,
            }
        ),
        "nav_active": "teams",
    }


def _team_response(
    request: AuthedRequest, team: Team, partial: str, *, ok: bool, **forms: Any
) -> HttpResponse:
    """After a POST: the changed fragment for htmx; otherwise a redirect, or the errors."""
    if request.htmx:
        team.refresh_from_db()
        return render(request, f"{TEAM_PAGE}#{partial}", _team_context(request, team, **forms))
    if ok or not forms:
        return redirect(reverse("sessions_app:team-detail", args=[team.slug]) + f"#{partial}")
    return render(request, TEAM_PAGE, _team_context(request, team, **forms))


@require_GET
def team_list(request: AuthedRequest) -> HttpResponse:
    memberships = memberships_for_user(request.user)
    teams = (
        Team.objects.filter(pk__in=memberships)
        .annotate(member_count=Count("memberships", distinct=True))
        .annotate(connection_count=Count("connections", distinct=True))
        .prefetch_related(
            Prefetch("connections", queryset=JulesConnection.objects.order_by("label"))
        )
        .order_by("name")
    )
    rows = [(team, memberships[team.pk].get_role_display()) for team in teams]
    template = "sessions_app/teams/team_list.html"
    if request.htmx and request.htmx.target == "teams":
        template += "#teams"
    return render(request, template, {"rows": rows, "nav_active": "teams"})


@require_GET
def team_detail(request: AuthedRequest, slug: str) -> HttpResponse:
    team = _team_for(request, slug)
    template = TEAM_PAGE
    if request.htmx and request.htmx.target in {"team-members", "team-connections", "team-policy"}:
        template += "#" + request.htmx.target.removeprefix("team-")
    return render(request, template, _team_context(request, team))


@require_POST
def member_add(request: AuthedRequest, slug: str) -> HttpResponse:
    team = _team_for(request, slug, Role.ADMIN)
    form = MemberAddForm(request.POST)
    if form.is_valid():
        try:
            membership = services.membership_add(
                actor=request.user,
                team=team,
                username=form.cleaned_data["username"],
                role=form.cleaned_data["role"],
                request=request,
            )
        except services.ActionNotAllowed as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                f"{membership.user.get_username()} joined as {membership.get_role_display()}.",
            )
            return _team_response(request, team, "members", ok=True)
    return _team_response(request, team, "members", ok=False, member_form=form)


@require_POST
def member_role(request: AuthedRequest, slug: str, membership_pk: int) -> HttpResponse:
    team = _team_for(request, slug, Role.ADMIN)
    membership = get_object_or_404(
        Membership.objects.select_related("user"), pk=membership_pk, team=team
    )
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick one of the roles.")
    else:
        try:
            changed = services.membership_change_role(
                actor=request.user,
                membership=membership,
                role=form.cleaned_data["role"],
                request=request,
            )
        except services.ActionNotAllowed as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request, f"{changed.user.get_username()} is now {changed.get_role_display()}."
            )
    return _team_response(request, team, "members", ok=True)


@require_POST
def member_remove(request: AuthedRequest, slug: str, membership_pk: int) -> HttpResponse:
    team = _team_for(request, slug, Role.ADMIN)
    membership = get_object_or_404(
        Membership.objects.select_related("user"), pk=membership_pk, team=team
    )
    try:
        services.membership_remove(actor=request.user, membership=membership, request=request)
    except services.ActionNotAllowed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{membership.user.get_username()} left the team.")
        if membership.user_id == request.user.pk:
            # The admin removed themselves: the team page is no longer theirs to see.
            return _leave(request)
    return _team_response(request, team, "members", ok=True)


def _leave(request: AuthedRequest) -> HttpResponse:
    url = reverse("sessions_app:team-list")
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_POST
@sensitive_post_parameters("api_key")
def connection_add(request: AuthedRequest, slug: str) -> HttpResponse:
    team = _team_for(request, slug, Role.ADMIN)
    form = ConnectionAddForm(request.POST)
    if form.is_valid():
        try:
            connection = services.connection_add(
                actor=request.user,
                team=team,
                label=form.cleaned_data["label"],
                api_key=form.cleaned_data["api_key"],
                base_url=form.cleaned_data["base_url"],
                request=request,
            )
        except services.KeyRejected as exc:
            form.add_error("api_key", str(exc))
        except services.ActionNotAllowed as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request, f"Connection {connection.label} added; the first sync starts now."
            )
            return _team_response(request, team, "connections", ok=True)
    return _team_response(request, team, "connections", ok=False, connection_form=form)


@require_POST
def team_policy(request: AuthedRequest, slug: str) -> HttpResponse:
    team = _team_for(request, slug, Role.ADMIN)
    form = PolicyForm(request.POST)
    form.is_valid()  # Two optional checkboxes: always valid.
    services.team_update_policy(
        actor=request.user,
        team=team,
        require_plan_approval=form.cleaned_data["require_plan_approval"],
        forbid_self_approval=form.cleaned_data["forbid_self_approval"],
        request=request,
    )
    messages.success(request, "Approval policy saved.")
    return _team_response(request, team, "policy", ok=True)


def _connection_context(
    request: AuthedRequest, connection: JulesConnection, **extra: Any
) -> dict[str, Any]:
    role = role_in_team(request.user, connection.team_id) or Role.VIEWER
    return {
        "connection": _decorate(connection),
        "team": connection.team,
        "is_admin": role_at_least(role, Role.ADMIN),
        "session_count": connection.sessions.count(),
        "source_count": connection.sources.count(),
        "rotate_form": extra.get("rotate_form") or RotateKeyForm(),
        "nav_active": "teams",
    }


@require_GET
def connection_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    connection = _connection_for(request, pk)
    context = _connection_context(request, connection)
    if request.htmx and request.htmx.target == f"connection-{connection.pk}-status":
        response = render(request, f"{CONNECTION_PAGE}#sync-status", context)
        if not context["connection"].syncing:
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
        except services.ActionNotAllowed as exc:
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
                request, f"{TEAM_PAGE}#connections", _team_context(request, connection.team)
            )
        return render(
            request, f"{CONNECTION_PAGE}#connection", _connection_context(request, connection)
        )
    if from_team_page:
        return redirect(
            reverse("sessions_app:team-detail", args=[connection.team.slug]) + "#connections"
        )
    return redirect("sessions_app:connection-detail", pk=connection.pk)
