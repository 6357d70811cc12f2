"""Team pages: the teams list, a team's members, connections and policy, and the
admin-only forms that change members and the policy (connections: `connections.views`).

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
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from sessions_app import access
from sessions_app.access import ActionNotAllowed, RoleRequired
from sessions_app.connections.forms import ConnectionAddForm, ConnectionRenameForm
from sessions_app.connections.selectors import sync_progress
from sessions_app.identity import invitations
from sessions_app.models import Invitation, JulesConnection, Membership, Role, Team
from sessions_app.teams import services
from sessions_app.teams.forms import InviteForm, PolicyForm, RoleForm
from sessions_app.teams.selectors import get_team_for_user, is_service_bot, people_of_team
from sessions_app.web.request import AuthedRequest

TEAM_PAGE = "sessions_app/teams/team_detail.html"


def team_for(request: AuthedRequest, slug: str, needed: str = Role.VIEWER) -> Team:
    try:
        return get_team_for_user(request.user, slug, needed)
    except RoleRequired as exc:
        raise PermissionDenied("Only the team's admins may change it.") from exc


def team_context(request: AuthedRequest, team: Team, **forms: Any) -> dict[str, Any]:
    role = access.role_in_team(request.user, team.pk) or Role.VIEWER
    # Service tokens' bots are members for the role checks, but not people: their own
    # page lists them (and revoking a token, not "Remove", ends its membership).
    memberships = list(people_of_team(team).select_related("user").order_by("user__username"))
    connections = list(
        JulesConnection.objects.filter(team=team)
        .select_related("added_by")
        .annotate(session_count=Count("sessions"))
        .order_by("label")
    )
    return {
        "team": team,
        "role": role,
        "is_admin": bool(access.may_manage_members(role)),
        "memberships": memberships,
        "bot_count": Membership.objects.filter(team=team).filter(is_service_bot()).count(),
        "admin_count": sum(1 for m in memberships if m.role == Role.ADMIN),
        "roles": Role.choices,
        "connections": connections,
        "connection_rows": [(c, sync_progress(c)) for c in connections],
        "member_form": forms.get("member_form") or InviteForm(),
        "invitations": list(
            Invitation.objects.filter(
                team=team, status=Invitation.Status.PENDING, expires_at__gt=timezone.now()
            ).select_related("invited_user", "invited_by")
        ),
        "connection_form": forms.get("connection_form") or ConnectionAddForm(),
        "rename_form": ConnectionRenameForm(),
        "policy_form": forms.get("policy_form")
        or PolicyForm(
            initial={
                "require_plan_approval": team.require_plan_approval,
                "forbid_self_approval": team.forbid_self_approval,
            }
        ),
        "nav_active": "teams",
    }


def team_response(
    request: AuthedRequest, team: Team, partial: str, *, ok: bool, **forms: Any
) -> HttpResponse:
    """After a POST: the changed fragment for htmx; otherwise a redirect, or the errors."""
    if request.htmx:
        team.refresh_from_db()
        return render(request, f"{TEAM_PAGE}#{partial}", team_context(request, team, **forms))
    if ok or not forms:
        return redirect(reverse("sessions_app:team-detail", args=[team.slug]) + f"#{partial}")
    return render(request, TEAM_PAGE, team_context(request, team, **forms))


@require_GET
def team_list(request: AuthedRequest) -> HttpResponse:
    memberships = access.memberships_for_user(request.user)
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
    invitations = Invitation.objects.filter(
        access.addressed_to(request.user),
        status=Invitation.Status.PENDING,
        expires_at__gt=timezone.now(),
    ).select_related("team", "invited_by")
    template = "sessions_app/teams/team_list.html"
    if request.htmx and request.htmx.target == "teams":
        template += "#teams"
    context = {"rows": rows, "invitations": list(invitations), "nav_active": "teams"}
    return render(request, template, context)


@require_GET
def team_detail(request: AuthedRequest, slug: str) -> HttpResponse:
    team = team_for(request, slug)
    template = TEAM_PAGE
    if request.htmx and request.htmx.target in {"team-members", "team-connections", "team-policy"}:
        template += "#" + request.htmx.target.removeprefix("team-")
    return render(request, template, team_context(request, team))


@require_POST
def invitation_create(request: AuthedRequest, slug: str) -> HttpResponse:
    team = team_for(request, slug, Role.ADMIN)
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            invitation = invitations.invitation_create_by_email(
                actor=request.user,
                team=team,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                request=request,
            )
        except ActionNotAllowed as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                f"{invitation.invitee_label} is invited as {invitation.get_role_display()}; "
                "they get a link by email and join when they accept.",
            )
            return team_response(request, team, "members", ok=True)
    return team_response(request, team, "members", ok=False, member_form=form)


@require_POST
def invitation_revoke(request: AuthedRequest, slug: str, invitation_pk: int) -> HttpResponse:
    team = team_for(request, slug, Role.ADMIN)
    invitation = get_object_or_404(
        Invitation.objects.select_related("invited_user"), pk=invitation_pk, team=team
    )
    try:
        services.invitation_revoke(actor=request.user, invitation=invitation, request=request)
    except ActionNotAllowed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"The invitation of {invitation.invitee_label} is revoked.")
    return team_response(request, team, "members", ok=True)


def _invitation_for(request: AuthedRequest, pk: int) -> Invitation:
    # Only the invitee sees it; anyone else, team admins included, gets a 404 here.
    return get_object_or_404(
        Invitation.objects.filter(access.addressed_to(request.user)).select_related(
            "team", "invited_by"
        ),
        pk=pk,
    )


@require_POST
def invitation_answer(request: AuthedRequest, pk: int, answer: str) -> HttpResponse:
    invitation = _invitation_for(request, pk)
    try:
        if answer == "accept":
            membership = services.invitation_accept(
                actor=request.user, invitation=invitation, request=request
            )
        else:
            services.invitation_decline(actor=request.user, invitation=invitation, request=request)
    except ActionNotAllowed as exc:
        messages.error(request, str(exc))
    else:
        if answer == "accept":
            messages.success(
                request,
                f"You joined {invitation.team.name} as {membership.get_role_display()}.",
            )
        else:
            messages.success(request, f"You declined the invitation to {invitation.team.name}.")
    url = reverse("sessions_app:team-list")
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_POST
def member_role(request: AuthedRequest, slug: str, membership_pk: int) -> HttpResponse:
    team = team_for(request, slug, Role.ADMIN)
    membership = get_object_or_404(people_of_team(team).select_related("user"), pk=membership_pk)
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
        except ActionNotAllowed as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request, f"{changed.user.get_username()} is now {changed.get_role_display()}."
            )
    return team_response(request, team, "members", ok=True)


@require_POST
def member_remove(request: AuthedRequest, slug: str, membership_pk: int) -> HttpResponse:
    team = team_for(request, slug, Role.ADMIN)
    membership = get_object_or_404(people_of_team(team).select_related("user"), pk=membership_pk)
    try:
        services.membership_remove(actor=request.user, membership=membership, request=request)
    except ActionNotAllowed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{membership.user.get_username()} left the team.")
        if membership.user_id == request.user.pk:
            # The admin removed themselves: the team page is no longer theirs to see.
            return _leave(request)
    return team_response(request, team, "members", ok=True)


def _leave(request: AuthedRequest) -> HttpResponse:
    url = reverse("sessions_app:team-list")
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_POST
def team_policy(request: AuthedRequest, slug: str) -> HttpResponse:
    team = team_for(request, slug, Role.ADMIN)
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
    return team_response(request, team, "policy", ok=True)
