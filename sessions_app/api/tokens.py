"""API tokens: creating, revoking and resolving them. Every change is audited."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from sessions_app import access
from sessions_app.access import ActionNotAllowed
from sessions_app.audit import chain as audit
from sessions_app.audit.actions import AuditAction
from sessions_app.audit.chain import Target
from sessions_app.models import ApiToken, Membership, Role, Scope, Team

# Tokens start with this, so that a leaked one is easy to recognise (and to scan for).
TOKEN_PREFIX = "jpt_"  # noqa: S105 (a marker, not a secret)


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _new_secret() -> tuple[str, str]:
    prefix = secrets.token_hex(4)
    return prefix, f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"


def _clean(name: str, scopes: Iterable[str]) -> tuple[str, list[str]]:
    name = name.strip()
    if not name:
        raise ActionNotAllowed("Give the token a name.")
    chosen = sorted(set(scopes))
    unknown = [s for s in chosen if s not in Scope.values]
    if unknown:
        raise ActionNotAllowed(f"Unknown scope {unknown[0][:40]!r}.")
    if not chosen:
        raise ActionNotAllowed("Pick at least one scope.")
    return name, chosen


def _target(token: ApiToken) -> Target:
    return Target("token", str(token.pk), f"{token.name} ({token.prefix})")


def token_create(
    *,
    user: Any,
    name: str,
    scopes: Iterable[str],
    expires_at: dt.datetime | None = None,
    team: Team | None = None,
    role: str = Role.MEMBER,
    request: HttpRequest | None = None,
) -> tuple[ApiToken, str]:
    """A personal token (no team) or a team's service token; returns it and its secret,
    which is never stored and cannot be shown again."""
    name, chosen = _clean(name, scopes)
    if expires_at is not None and expires_at <= timezone.now():
        raise ActionNotAllowed("The expiry is in the past.")
    if team is not None:
        access.require(
            access.may_manage_members(
                access.require_in_team(user, team.pk), "create service tokens"
            )
        )
        if role not in Role.values:
            raise ActionNotAllowed("Pick a role for the token.")
    prefix, raw = _new_secret()
    with transaction.atomic():
        owner = user
        if team is not None:
            # The bot cannot sign in; it exists so that the services' role checks and the
            # audit see the token as a member of its team.
            owner = get_user_model().objects.create(
                username=f"token:{prefix}:{name}"[:150], is_active=False
            )
            owner.set_unusable_password()
            owner.save(update_fields=["password"])
            Membership.objects.create(team=team, user=owner, role=role)
        token = ApiToken.objects.create(
            name=name,
            prefix=prefix,
            digest=digest(raw),
            user=owner,
            team=team,
            role=role if team is not None else "",
            scopes=chosen,
            created_by=user,
            expires_at=expires_at,
        )
        audit.record(
            AuditAction.TOKEN_CREATE,
            actor=user,
            team=team.pk if team is not None else None,
            target=_target(token),
            details={
                "scopes": chosen,
                "role": token.role,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
            request=request,
        )
    return token, raw


def tokens_for_user(user: Any) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user, team__isnull=True)


def service_tokens_for_team(user: Any, team: Team) -> QuerySet[ApiToken]:
    access.require_in_team(user, team.pk)
    return ApiToken.objects.filter(team=team).select_related("created_by")


def get_token_for_user(user: Any, pk: Any) -> ApiToken | None:
    """A token the user may revoke: their own, or a service token of a team they admin."""
    token = ApiToken.objects.filter(pk=pk).select_related("team").first()
    if token is None:
        return None
    if token.team_id is None:
        return token if token.user_id == user.pk else None
    if access.role_in_team(user, token.team_id) is None:
        return None
    return token


def token_revoke(*, user: Any, token: ApiToken, request: HttpRequest | None = None) -> None:
    if token.team_id is not None:
        access.require(
            access.may_manage_members(
                access.require_in_team(user, token.team_id), "revoke service tokens"
            )
        )
    elif token.user_id != user.pk:
        raise ActionNotAllowed("Only its owner may revoke a personal token.")
    with transaction.atomic():
        if ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        ):
            if token.team_id is not None:
                Membership.objects.filter(user_id=token.user_id).delete()
            audit.record(
                AuditAction.TOKEN_REVOKE,
                actor=user,
                team=token.team_id,
                target=_target(token),
                request=request,
            )


def resolve(raw: str) -> ApiToken | None:
    """The live token with this secret, or None."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    token = ApiToken.objects.select_related("user").filter(digest=digest(raw)).first()
    if token is None or not token.is_live():
        return None
    return token
