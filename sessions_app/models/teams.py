"""Teams, their members and roles, and the team's approval policy."""

from __future__ import annotations

from django.conf import settings
from django.db import models


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
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="unique_membership"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} as {self.role}"

    def can(self, needed: str) -> bool:
        return role_at_least(self.role, needed)
