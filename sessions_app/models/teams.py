"""Teams, their members and roles, and the team's approval policy."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    MEMBER = "member", "Member"
    APPROVER = "approver", "Approver"
    ADMIN = "admin", "Admin"


# Each role can do everything the roles before it can.
ROLE_RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.APPROVER: 2, Role.ADMIN: 3}


def role_at_least(role: str, needed: str) -> bool:
    return ROLE_RANK[Role(role)] >= ROLE_RANK[Role(needed)]


class Team(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Approval policy. Sessions launched from the portal require plan approval by default,
    # so that Jules' auto-approval never decides for the team.
    require_plan_approval = models.BooleanField(default=True)
    forbid_self_approval = models.BooleanField(
        default=False,
        help_text="The person who launched a session may not approve its plan.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Origin(models.TextChoices):
        # Added by a person (an invitation, the operator) or by the provider's groups,
        # which re-apply only to the memberships they made (docs/sign-in.md).
        MANUAL = "manual", "Added in the portal"
        PROVIDER = "provider", "From the identity provider's groups"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.MANUAL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="unique_membership"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} as {self.role}"

    def can(self, needed: str) -> bool:
        return role_at_least(self.role, needed)


class Invitation(models.Model):
    """An offer to join a team, which only the invited person can accept.

    Addressed to an account (`invited_user`) or, for a delivery by email, to an `email`
    whose owner accepts with the token; the token is kept only as its SHA-256, and an
    invitation answers once.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        REVOKED = "revoked", "Revoked"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    invited_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="invitations",
    )
    email = models.EmailField(blank=True)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    # The token, encrypted, only until the invitation email went out (the link needs it;
    # the hash alone cannot make it): sessions_app/identity/invitations.py.
    token_sealed = models.TextField(blank=True, default="")
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "invited_user"],
                condition=models.Q(status="pending"),
                name="one_pending_invitation_per_user",
            ),
            models.UniqueConstraint(
                fields=["team", "email"],
                condition=models.Q(status="pending") & ~models.Q(email=""),
                name="one_pending_invitation_per_email",
            ),
            models.CheckConstraint(
                condition=~models.Q(invited_user=None, email=""),
                name="invitation_has_an_invitee",
            ),
        ]

    def __str__(self) -> str:
        return f"Invitation of {self.invitee_label} to {self.team} as {self.role}"

    @property
    def invitee_label(self) -> str:
        return self.invited_user.get_username() if self.invited_user else self.email

    def is_open(self, now: Any = None) -> bool:
        return self.status == self.Status.PENDING and self.expires_at > (now or timezone.now())
