"""Invitations by email: a link that works once, until it expires (docs/sign-in.md).

The invitation row is written first, with its token encrypted until the email is out,
then a task sends it (sessions_app/tasks.py, `send_invitation`); the token itself is kept
only as its SHA-256 once sent. A person joins only by accepting, or by the group mapping.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from sessions_app import access
from sessions_app.access import ActionNotAllowed
from sessions_app.audit import chain as audit
from sessions_app.audit.actions import AuditAction
from sessions_app.audit.chain import Target
from sessions_app.connections import crypto
from sessions_app.models import Invitation, Membership, Role, Team
from sessions_app.tasks import send_invitation
from sessions_app.teams.services import acting_role, answer_invitation, record_answer, token_hash

log = logging.getLogger(__name__)


def join_url(token: str) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("sessions_app:invitation-join", args=[token])


def invitation_create_by_email(
    *,
    actor: Any,
    team: Team,
    email: str,
    role: str,
    operator: bool = False,
    request: HttpRequest | None = None,
) -> Invitation:
    access.require(access.may_invite(acting_role(actor, team.pk, operator=operator)))
    role = Role(role)
    address = email.strip().lower()
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        Team.objects.select_for_update().get(pk=team.pk)
        member = (
            Membership.objects.filter(team=team, user__email__iexact=address)
            .select_related("user")
            .first()
        )
        if member is not None:
            raise ActionNotAllowed(
                f"{address} belongs to {member.user.get_username()}, who is already in the "
                f"team as {member.get_role_display()}."
            )
        now = timezone.now()
        # An expired invitation no longer holds the one pending place.
        Invitation.objects.filter(
            team=team, email=address, status=Invitation.Status.PENDING, expires_at__lte=now
        ).update(status=Invitation.Status.REVOKED, answered_at=now)
        try:
            with transaction.atomic():
                invitation = Invitation.objects.create(
                    team=team,
                    role=role,
                    email=address,
                    token_hash=token_hash(token),
                    token_sealed=crypto.encrypt(token),
                    invited_by=actor if getattr(actor, "is_authenticated", False) else None,
                    expires_at=now + dt.timedelta(days=settings.INVITATION_DAYS),
                )
        except IntegrityError:
            raise ActionNotAllowed(
                f"{address} already has a pending invitation to the team; revoke it first to "
                "send a new one."
            ) from None
        audit.record(
            AuditAction.MEMBER_INVITE,
            actor=actor,
            team=team,
            target=Target("email", address[:64], address),
            details={
                "email": address,
                "role": role.value,
                "expires_at": invitation.expires_at.isoformat(),
            },
            request=request,
        )
        transaction.on_commit(lambda: _enqueue(invitation.pk))
    return invitation


def _enqueue(invitation_id: int) -> None:
    try:
        send_invitation.delay(invitation_id)
    except Exception:  # The broker is down: the row waits, and the team page says so.
        log.exception("invitation %s not queued", invitation_id)


# A claim older than this is a worker that died while sending: the sweep sends again.
SEND_CLAIM_SECONDS = 600


def invitation_send(invitation_id: int) -> bool:
    """Send the invitation's email once; False when there is nothing (left) to send.

    The send is claimed by a conditional update (emailed_at), so two workers never send
    one invitation twice; a failed send gives the claim back for the task's retry.
    """
    now = timezone.now()
    stale = now - dt.timedelta(seconds=SEND_CLAIM_SECONDS)
    unsent = Invitation.objects.filter(
        pk=invitation_id, status=Invitation.Status.PENDING, expires_at__gt=now
    ).exclude(token_sealed="")
    claimed = unsent.filter(Q(emailed_at=None) | Q(emailed_at__lt=stale)).update(emailed_at=now)
    if not claimed:
        return False
    invitation = Invitation.objects.select_related("team", "invited_by").get(pk=invitation_id)
    context = {
        "invitation": invitation,
        "team": invitation.team,
        "url": join_url(crypto.decrypt(invitation.token_sealed)),
        "inviter": invitation.invited_by.get_username() if invitation.invited_by else "",
    }
    message = EmailMultiAlternatives(
        subject=f"You are invited to {invitation.team.name} on the Jules team portal",
        body=render_to_string("sessions_app/identity/invitation_email.txt", context),
        to=[invitation.email],
    )
    try:
        message.send()
    except Exception:
        Invitation.objects.filter(pk=invitation_id, emailed_at=now).update(emailed_at=None)
        raise
    # Sent: the token is no longer kept in any readable form.
    Invitation.objects.filter(pk=invitation_id).update(token_sealed="")
    return True


def invitations_unsent() -> list[int]:
    """Invitations whose email is still due: the broker was down, or a worker died."""
    now = timezone.now()
    stale = now - dt.timedelta(seconds=SEND_CLAIM_SECONDS)
    return list(
        Invitation.objects.filter(status=Invitation.Status.PENDING, expires_at__gt=now)
        .exclude(token_sealed="")
        .filter(
            Q(emailed_at=None, created_at__lt=now - dt.timedelta(minutes=1))
            | Q(emailed_at__lt=stale)
        )
        .values_list("pk", flat=True)[:100]
    )


def invitation_for_token(token: str) -> Invitation | None:
    if not token or len(token) > 200:
        return None
    return (
        Invitation.objects.select_related("team", "invited_by")
        .filter(token_hash=token_hash(token))
        .first()
    )


def invitation_accept_by_link(
    *, actor: Any, invitation: Invitation, request: HttpRequest | None = None
) -> Membership:
    access.require(access.may_accept_by_link(actor, invitation))
    team = invitation.team
    with transaction.atomic():
        Team.objects.select_for_update().get(pk=team.pk)
        if Membership.objects.filter(team=team, user=actor).exists():
            raise ActionNotAllowed(f"You are already in {team.name}.")
        answer_invitation(invitation, Invitation.Status.ACCEPTED, invited_user=actor)
        membership = Membership.objects.create(team=team, user=actor, role=invitation.role)
        record_answer(invitation, membership, actor=actor, request=request, email=invitation.email)
    return membership


def invitation_decline_by_link(
    *, actor: Any, invitation: Invitation, request: HttpRequest | None = None
) -> None:
    access.require(access.may_accept_by_link(actor, invitation))
    with transaction.atomic():
        answer_invitation(invitation, Invitation.Status.DECLINED)
        record_answer(invitation, None, actor=actor, request=request, email=invitation.email)
