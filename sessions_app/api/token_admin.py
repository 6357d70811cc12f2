"""A team's service tokens over the API, for its admins with the `admin` scope: list them
and revoke one (creating one stays on the team's page, where its secret is shown once)."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest
from ninja import Router

from sessions_app import access
from sessions_app.api import schemas as s
from sessions_app.api.auth import caller, need
from sessions_app.api.common import ERRORS, IDEMPOTENCY_KEY, WRITE_ERRORS, idempotent
from sessions_app.api.errors import ApiError, forbidden
from sessions_app.api.tokens import service_tokens_for_team, token_revoke
from sessions_app.models import ApiToken, Scope, Team
from sessions_app.teams.selectors import teams_for_user

router = Router()
MAX_TOKENS = 500


def _admin_team(request: HttpRequest, slug: str) -> Team:
    need(request, Scope.ADMIN)
    user = caller(request)
    team = teams_for_user(user).filter(slug=slug).first()
    if team is None:
        raise ApiError(404, "not_found", "No such object.")
    decision = access.may_manage_members(
        access.require_in_team(user, team.pk), "manage service tokens"
    )
    if not decision:
        raise forbidden(decision.reason)
    return team


def _out(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.pk,
        "name": token.name,
        "prefix": token.prefix,
        "bot": token.user.get_username(),
        "role": token.role,
        "scopes": list(token.scopes),
        "created_by": token.created_by.get_username() if token.created_by else None,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
    }


@router.get(
    "/teams/{slug}/tokens", response={200: list[s.ServiceTokenOut], **ERRORS}, tags=["teams"]
)
def team_tokens(request: HttpRequest, slug: str) -> Any:
    """The team's service tokens, revoked ones too, newest first (never their secrets)."""
    team = _admin_team(request, slug)
    tokens = service_tokens_for_team(caller(request), team).select_related("user")
    return [_out(token) for token in tokens.order_by("-created_at")[:MAX_TOKENS]]


@router.post(
    "/teams/{slug}/tokens/{token_id}/revoke",
    response={200: s.ServiceTokenOut, **WRITE_ERRORS},
    tags=["teams"],
)
def team_token_revoke(
    request: HttpRequest, slug: str, token_id: uuid.UUID, idempotency_key: str = IDEMPOTENCY_KEY
) -> Any:
    """Revoke one of the team's service tokens; its bot leaves the team. Revoking a revoked
    token changes nothing and answers it again."""
    team = _admin_team(request, slug)
    token = (
        ApiToken.objects.filter(pk=token_id, team=team).select_related("user", "created_by").first()
    )
    if token is None:
        raise ApiError(404, "not_found", "No such object.")

    def act() -> tuple[int, Any]:
        token_revoke(user=caller(request), token=token, request=request)
        token.refresh_from_db(fields=["revoked_at", "last_used_at"])
        return 200, s.ServiceTokenOut.model_validate(_out(token)).model_dump(mode="json")

    return idempotent(request, act)
