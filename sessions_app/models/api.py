"""API tokens and the answers kept for idempotent retries (docs/api.md)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from sessions_app.models.teams import Role, Team


class Scope(models.TextChoices):
    READ = "read", "Read"
    LAUNCH = "launch", "Launch, archive and unarchive"
    APPROVE = "approve", "Approve plans"
    MESSAGE = "message", "Message the agent"
    ADMIN = "admin", "Administer the team's service tokens"


class ApiToken(models.Model):
    """A bearer token. Only the SHA-256 of the secret is kept; the secret is shown once.

    A personal token acts as its owner, with the owner's roles. A service token (`team`
    set) acts as its own inactive bot user, a member of the team at `role`, so the
    services' role checks and the audit name the token, not a person.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="service_tokens"
    )
    role = models.CharField(max_length=16, choices=Role.choices, blank=True)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def is_service(self) -> bool:
        return self.team_id is not None

    def is_live(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()


class IdempotentAnswer(models.Model):
    """The first answer to a POST sent with an `Idempotency-Key`, replayed on a retry."""

    caller = models.CharField(max_length=64)
    key = models.CharField(max_length=200)
    path = models.CharField(max_length=300)
    status = models.PositiveSmallIntegerField()
    body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["caller", "key"], name="unique_idempotency_key"),
        ]

    def __str__(self) -> str:
        return f"{self.caller} {self.key}"
