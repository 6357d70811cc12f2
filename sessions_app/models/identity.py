"""People's links to the company's identity provider (docs/sign-in.md)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ProviderIdentity(models.Model):
    """The stable link of an account to an OpenID Connect subject.

    An account is found by (issuer, sub), never by email: an address can be reused or
    changed at the provider, the subject cannot.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="provider_identities"
    )
    issuer = models.CharField(max_length=300)
    subject = models.CharField(max_length=255)
    email = models.EmailField(blank=True)
    groups = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "provider identities"
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="unique_provider_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"


class UsedNonce(models.Model):
    """The SHA-256 of each ID token nonce that signed someone in: a nonce works once.

    Kept in the database, not the cache, so that a Redis outage neither blocks sign-ins
    nor forgets a nonce; rows older than any ID token are deleted as new ones arrive.
    """

    digest = models.CharField(max_length=64, primary_key=True)
    created_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.digest
