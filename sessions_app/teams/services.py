"""Team and membership writes: role check, the team's row lock, audit in one transaction.

`operator=True` is the Django admin acting: the operator's model permissions were checked
by the admin, so the team role is not asked, but every other rule (the last admin) holds.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from sessions_app import access
from sessions_app.access import ActionNotAllowed
from sessions_app.audit import chain as audit
from sessions_app.audit.actions import AuditAction
from sessions_app.audit.chain import Target
from sessions_app.models import Invitation, Membership, Role, Team
from sessions_app.teams.selectors import people_of_team

POLICY_FIELDS = ("require_plan_approval", "forbid_self_approval")
LAST_ADMIN = "This is the team's last admin; make someone else an admin first."


def acting_role(actor: Any, team_id: int, *, operator: bool = False) -> str | None:
    """The actor's role for a write: a staff operator in the admin acts as an admin."""
    if operator and getattr(actor, "is_staff", False):
        return Role.ADMIN
    return access.require_in_team(actor, team_id)


def _lock_team(team: Team) -> Team:
    # Membership changes of one team are serialised on its row, so that two admins
    # demoting each other at the same moment cannot leave the team without an admin.
    return Team.objects.select_for_update().get(pk=team.pk)


def other_admins(team: Team, membership: Membership) -> bool:
    # A service token's bot cannot sign in: an admin token does not keep a team run.
    others = people_of_team(team).filter(role=Role.ADMIN).exclude(pk=membership.pk)
    return others.exists()


def team_create(*, actor: Any, team: Team, request: HttpRequest | None = None) -> Team:
    """Save an operator's new team (the Django admin) and record it."""
    if not getattr(actor, "is_staff", False):
        raise ActionNotAllowed("Only an operator may create teams.")
    with transaction.atomic():
        team.save()
        audit.record(
            AuditAction.TEAM_CREATE,
            actor=actor,
            team=team,
            target=Target.of_team(team),
            details={
                "name": team.name,
                "slug": team.slug,
                "policy": {name: getattr(team, name) for name in POLICY_FIELDS},
            },
            request=request,
        )
    return team


def team_delete(*, actor: Any, team: Team, request: HttpRequest | None = None) -> None:
    if not getattr(actor, "is_staff", False):
        raise ActionNotAllowed("Only an operator may delete teams.")
    with transaction.atomic():
        audit.record(
            AuditAction.TEAM_DELETE,
            actor=actor,
            team=team,
            target=Target.of_team(team),
            details={"name": team.name, "slug": team.slug},
            request=request,
        )
        team.delete()


def membership_add(
    *,
    actor: Any,
    team: Team,
    role: str,
    username: str = "",
    user: Any = None,
    operator: bool = False,
    request: HttpRequest | None = None,
) -> Membership:
    """Add a person directly: the operator only (team admins invite, see below)."""
    access.require(
        access.may_manage_members(acting_role(actor, team.pk, operator=operator), "add members")
    )
    access.require(access.may_add_without_consent(operator))
    role = Role(role)
    if user is None:
        user = get_user_model().objects.filter(username=username.strip()).first()
    if user is None:
        raise ActionNotAllowed(
            f"There is no user named {username.strip()!r}; an operator creates accounts."
        )
    with transaction.atomic():
        _lock_team(team)
        existing = Membership.objects.filter(team=team, user=user).first()
        if existing is not None:
            raise ActionNotAllowed(
                f"{user.get_username()} is already in the team as {existing.get_role_display()}."
            )
        membership = Membership.objects.create(team=team, user=user, role=role)
        audit.record(
            AuditAction.MEMBER_ADD,
            actor=actor,
            team=team,
            target=Target.of_user(user),
            details={"username": user.get_username(), "role": role.value},
            request=request,
        )
    return membership


def membership_change_role(
    *,
    actor: Any,
    membership: Membership,
    role: str,
    operator: bool = False,
    request: HttpRequest | None = None,
) -> Membership:
    team = membership.team
    access.require(
        access.may_manage_members(acting_role(actor, team.pk, operator=operator), "change roles")
    )
    role = Role(role)
    with transaction.atomic():
        _lock_team(team)
        current = Membership.objects.select_related("user").get(pk=membership.pk)
        if current.role == role:
            return current
        if current.role == Role.ADMIN and not other_admins(team, current):
            raise ActionNotAllowed(LAST_ADMIN)
        before = current.role
        current.role = role
        current.save(update_fields=["role"])
        audit.record(
            AuditAction.MEMBER_ROLE_CHANGE,
            actor=actor,
            team=team,
            target=Target.of_user(current.user),
            details={"username": current.user.get_username(), "from": before, "to": role.value},
            request=request,
        )
    return current


def membership_remove(
    *,
    actor: Any,
    membership: Membership,
    operator: bool = False,
    request: HttpRequest | None = None,
) -> None:
    team = membership.team
    access.require(
        access.may_manage_members(acting_role(actor, team.pk, operator=operator), "remove members")
    )
    with transaction.atomic():
        _lock_team(team)
        current = Membership.objects.select_related("user").filter(pk=membership.pk).first()
        if current is None:
            return
        if current.role == Role.ADMIN and not other_admins(team, current):
            raise ActionNotAllowed(LAST_ADMIN)
        username = current.user.get_username()
        current.delete()
        audit.record(
            AuditAction.MEMBER_REMOVE,
            actor=actor,
            team=team,
            target=Target("user", str(current.user_id), username),
            details={"username": username, "role": current.role},
            request=request,
        )


def team_update_policy(
    *,
    actor: Any,
    team: Team,
    require_plan_approval: bool,
    forbid_self_approval: bool,
    operator: bool = False,
    request: HttpRequest | None = None,
) -> Team:
    access.require(access.may_change_policy(acting_role(actor, team.pk, operator=operator)))
    with transaction.atomic():
        locked = _lock_team(team)
        before = {name: getattr(locked, name) for name in POLICY_FIELDS}
        after = {
            "require_plan_approval": require_plan_approval,
            "forbid_self_approval": forbid_self_approval,
        }
        if before == after:
            return locked
        locked.require_plan_approval = require_plan_approval
        locked.forbid_self_approval = forbid_self_approval
        locked.save(update_fields=list(after))
        audit.record(
            AuditAction.POLICY_CHANGE,
            actor=actor,
            team=locked,
            target=Target.of_team(locked),
            details={"before": before, "after": after},
            request=request,
        )
    return locked


# --- invitations ------------------------------------------------------------------------


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# Invitations are made by email: sessions_app/identity/invitations.py.


def answer_invitation(invitation: Invitation, status: str, **also: Any) -> None:
    """Claim the invitation's one answer by a conditional update (`also`: more fields to
    set with it); ActionNotAllowed when it was answered already or has expired."""
    now = timezone.now()
    claimed = Invitation.objects.filter(
        pk=invitation.pk, status=Invitation.Status.PENDING, expires_at__gt=now
    ).update(status=status, answered_at=now, **also)
    if claimed != 1:
        raise ActionNotAllowed("This invitation was answered already or has expired.")


def record_answer(
    invitation: Invitation,
    membership: Membership | None,
    *,
    actor: Any,
    request: HttpRequest | None,
    **details: Any,
) -> None:
    """Audit an accepted (`membership` given) or declined invitation."""
    if membership is not None:
        action = AuditAction.MEMBER_ACCEPT
        details.update(
            role=membership.role,
            invited_by=invitation.invited_by.get_username() if invitation.invited_by else "",
        )
    else:
        action = AuditAction.MEMBER_DECLINE
    audit.record(
        action,
        actor=actor,
        team=invitation.team,
        target=Target.of_user(actor),
        details={"username": actor.get_username(), **details},
        request=request,
    )


def invitation_accept(
    *, actor: Any, invitation: Invitation, request: HttpRequest | None = None
) -> Membership:
    access.require(access.may_answer_invitation(actor, invitation))
    team = invitation.team
    with transaction.atomic():
        _lock_team(team)
        answer_invitation(invitation, Invitation.Status.ACCEPTED)
        membership, _ = Membership.objects.get_or_create(
            team=team, user=actor, defaults={"role": invitation.role}
        )
        record_answer(invitation, membership, actor=actor, request=request)
    return membership


def invitation_decline(
    *, actor: Any, invitation: Invitation, request: HttpRequest | None = None
) -> None:
    access.require(access.may_answer_invitation(actor, invitation))
    with transaction.atomic():
        answer_invitation(invitation, Invitation.Status.DECLINED)
        record_answer(invitation, None, actor=actor, request=request, role=invitation.role)


def invitation_revoke(
    *,
    actor: Any,
    invitation: Invitation,
    operator: bool = False,
    request: HttpRequest | None = None,
) -> None:
    team = invitation.team
    access.require(
        access.may_invite(acting_role(actor, team.pk, operator=operator), "revoke invitations")
    )
    with transaction.atomic():
        updated = Invitation.objects.filter(
            pk=invitation.pk, status=Invitation.Status.PENDING
        ).update(status=Invitation.Status.REVOKED, answered_at=timezone.now())
        if not updated:
            raise ActionNotAllowed("This invitation was answered already.")
        audit.record(
            AuditAction.MEMBER_REVOKE,
            actor=actor,
            team=team,
            target=Target("user", str(invitation.invited_user_id or ""), invitation.invitee_label),
            details={"username": invitation.invitee_label, "role": invitation.role},
            request=request,
        )
