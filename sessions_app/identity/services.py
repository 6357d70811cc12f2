"""Writes of a provider sign-in: the account and its (issuer, sub) link, and the team
roles that the provider's groups give, re-applied at every sign-in (docs/sign-in.md)."""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from sessions_app.audit import chain as audit
from sessions_app.audit.actions import AuditAction
from sessions_app.audit.chain import Target
from sessions_app.identity import mapping
from sessions_app.identity.provider import SignInRefused
from sessions_app.models import Membership, ProviderIdentity, Role, Team
from sessions_app.teams.services import other_admins

PROVIDER_ACTOR = "identity provider"


def _free_username(claims: dict[str, Any]) -> str:
    User = get_user_model()
    email = str(claims.get("email") or "")
    wanted = claims.get("preferred_username") or email.partition("@")[0] or claims["sub"]
    base = re.sub(r"[^\w.@+-]", "", str(wanted))[:140] or "user"
    name, n = base, 1
    while User.objects.filter(username__iexact=name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def _verified_email(claims: dict[str, Any]) -> str:
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email or claims.get("email_verified") is False:
        return ""
    return email.strip()[:254]


def identity_sign_in(*, issuer: str, claims: dict[str, Any], groups: list[str]) -> Any:
    """The account of (issuer, sub), created at the first sign-in; never found by email."""
    try:
        return _sign_in(issuer, claims, groups)
    except IntegrityError:
        # Two first sign-ins of one person (or two new names alike) at the same moment:
        # the other one made the row, which this attempt now finds.
        return _sign_in(issuer, claims, groups)


def _sign_in(issuer: str, claims: dict[str, Any], groups: list[str]) -> Any:
    User = get_user_model()
    subject = str(claims["sub"])[:255]
    email = _verified_email(claims)
    now = timezone.now()
    with transaction.atomic():
        link = (
            ProviderIdentity.objects.select_for_update()
            .select_related("user")
            .filter(issuer=issuer, subject=subject)
            .first()
        )
        if link is None:
            user = User.objects.create_user(
                username=_free_username(claims),
                email=email,
                first_name=str(claims.get("given_name") or "")[:150],
                last_name=str(claims.get("family_name") or "")[:150],
            )
            user.set_unusable_password()
            user.save(update_fields=["password"])
            link = ProviderIdentity.objects.create(
                user=user, issuer=issuer, subject=subject, email=email, groups=groups
            )
        user = link.user
        if not user.is_active:
            raise SignInRefused(
                "This account is deactivated in the portal; ask its operator.", "inactive"
            )
        if email and user.email != email:
            user.email = email
            user.save(update_fields=["email"])
        link.email, link.groups, link.last_sign_in_at = email, groups, now
        link.save(update_fields=["email", "groups", "last_sign_in_at"])
    return user


def provider_roles_apply(
    *, user: Any, groups: list[str], rules: list[mapping.Rule], request: HttpRequest | None = None
) -> list[str]:
    """Make the memberships that came from the provider match its groups; manual ones stay.

    Returns one line per change, for the person's notice.
    """
    desired = mapping.desired_roles(groups, rules)
    changes: list[str] = []
    teams = Team.objects.filter(slug__in=mapping.teams_mapped(rules)).order_by("pk")
    for team in teams:
        with transaction.atomic():
            # The team's row lock, as every membership write takes (teams/services.py).
            Team.objects.select_for_update().get(pk=team.pk)
            current = Membership.objects.filter(team=team, user=user).first()
            role = desired.get(team.slug)
            details = {"username": user.get_username(), "origin": "provider", "groups": groups}
            if current is None and role is not None:
                Membership.objects.create(
                    team=team, user=user, role=role, origin=Membership.Origin.PROVIDER
                )
                action, details = AuditAction.MEMBER_ADD, {**details, "role": role.value}
                changes.append(f"You joined {team.name} as {role.label}.")
            elif current is None or current.origin != Membership.Origin.PROVIDER:
                continue
            elif (
                current.role == Role.ADMIN
                and role != Role.ADMIN
                and not other_admins(team, current)
            ):
                # The rule every membership write keeps: a team is never left without an
                # admin, by the provider either (teams/services.py, LAST_ADMIN).
                changes.append(
                    f"You stay an admin of {team.name}: you are its last admin, so your "
                    "groups change nothing there until someone else is one."
                )
                continue
            elif role is None:
                current.delete()
                action, details = AuditAction.MEMBER_REMOVE, {**details, "role": current.role}
                changes.append(f"You are no longer in {team.name}.")
            elif current.role != role:
                before = current.role
                current.role = role
                current.save(update_fields=["role"])
                action = AuditAction.MEMBER_ROLE_CHANGE
                details = {**details, "from": before, "to": role.value}
                changes.append(f"You are now {role.label} in {team.name}.")
            else:
                continue
            audit.record(
                action,
                actor_label=PROVIDER_ACTOR,
                team=team,
                target=Target.of_user(user),
                details=details,
                request=request,
            )
    return changes
