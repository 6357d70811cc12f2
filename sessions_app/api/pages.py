"""The portal pages that make and revoke API tokens: a person's own, under the user menu,
and a team's service tokens, for the team's admins. A new token's secret is shown once,
on the page that answers its creation, and never again."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from sessions_app.access import ActionNotAllowed
from sessions_app.api import tokens
from sessions_app.api.forms import ServiceTokenForm, TokenForm
from sessions_app.models import Role
from sessions_app.teams.views import team_for
from sessions_app.web.request import AuthedRequest

PAGE = "sessions_app/api/tokens.html"


def _page(request: AuthedRequest, form: Any, team: Any = None, **extra: Any) -> HttpResponse:
    listed = (
        tokens.service_tokens_for_team(request.user, team)
        if team is not None
        else tokens.tokens_for_user(request.user)
    )
    context = {"form": form, "team": team, "tokens": listed, **extra}
    status = 200 if form.is_bound is False or not form.errors else 400
    return render(request, PAGE, context, status=status)


@require_GET
def token_list(request: AuthedRequest) -> HttpResponse:
    return _page(request, TokenForm())


@require_POST
def token_create(request: AuthedRequest) -> HttpResponse:
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _page(request, form)
    try:
        _, raw = tokens.token_create(
            user=request.user,
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            expires_at=form.cleaned_data["expires_at"],
            request=request,
        )
    except ActionNotAllowed as exc:
        form.add_error(None, str(exc))
        return _page(request, form)
    return _page(request, TokenForm(), secret=raw)


@require_GET
def team_tokens(request: AuthedRequest, slug: str) -> HttpResponse:
    team = team_for(request, slug, Role.ADMIN)
    return _page(request, ServiceTokenForm(), team=team)


@require_POST
def team_token_create(request: AuthedRequest, slug: str) -> HttpResponse:
    team = team_for(request, slug, Role.ADMIN)
    form = ServiceTokenForm(request.POST)
    if not form.is_valid():
        return _page(request, form, team=team)
    try:
        _, raw = tokens.token_create(
            user=request.user,
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            expires_at=form.cleaned_data["expires_at"],
            team=team,
            role=form.cleaned_data["role"],
            request=request,
        )
    except ActionNotAllowed as exc:
        form.add_error(None, str(exc))
        return _page(request, form, team=team)
    return _page(request, ServiceTokenForm(), team=team, secret=raw)


@require_POST
def token_revoke(request: AuthedRequest, pk: Any) -> HttpResponse:
    token = tokens.get_token_for_user(request.user, pk)
    if token is None:
        raise Http404("No such token.")
    try:
        tokens.token_revoke(user=request.user, token=token, request=request)
    except ActionNotAllowed as exc:
        raise PermissionDenied(str(exc)) from exc
    messages.success(request, f"Token {token.name} revoked.")
    if token.team is not None:
        return redirect("sessions_app:team-tokens", token.team.slug)
    return redirect("sessions_app:api-tokens")
