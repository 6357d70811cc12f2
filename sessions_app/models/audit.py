"""The append-only audit history, chained by hash.

Entries cannot be updated or deleted through the ORM or the admin. Each entry's hash covers
its content and the previous entry's hash, so an edit made behind the ORM's back (raw SQL)
breaks the chain, and `python manage.py audit_verify` names the first broken entry.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.utils import timezone

from sessions_app.models.teams import Team

GENESIS_HASH = "0" * 64


class AppendOnlyError(Exception):
    """Raised on any attempt to change or remove an audit entry through the ORM."""


class AuditQuerySet(models.QuerySet["AuditEntry"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit entries cannot be updated.")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("Audit entries cannot be deleted.")

    def bulk_update(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit entries cannot be updated.")

    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> list[AuditEntry]:
        # An upsert would overwrite the entry already at that place in the chain.
        if kwargs.get("update_conflicts") or kwargs.get("update_fields"):
            raise AppendOnlyError("Audit entries cannot be updated.")
        return super().bulk_create(objs, *args, **kwargs)

    def update_or_create(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit entries cannot be updated.")


class AuditEntry(models.Model):
    seq = models.PositiveBigIntegerField(unique=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # No database constraint and no cascade: deleting a user or a team must not touch the
    # history, and the names are snapshotted so entries stay readable afterwards.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_label = models.CharField(max_length=150, blank=True)
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=32, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AuditQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "audit entries"
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["team", "-seq"], name="audit_team_seq"),
            models.Index(fields=["actor", "-seq"], name="audit_actor_seq"),
            models.Index(fields=["target_type", "target_id"], name="audit_target"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor_label or 'system'}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("Audit entries cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit entries cannot be deleted.")

    def canonical(self) -> str:
        """The entry's content, in the exact form that its hash covers."""
        return json.dumps(
            {
                "seq": self.seq,
                "created_at": self.created_at.isoformat(),
                "actor_id": self.actor_id,
                "actor_label": self.actor_label,
                "team_id": self.team_id,
                "action": self.action,
                "target_type": self.target_type,
                "target_id": self.target_id,
                "target_label": self.target_label,
                "details": self.details,
                "ip_address": self.ip_address,
            },
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        )

    def compute_hash(self) -> str:
        return hashlib.sha256((self.prev_hash + self.canonical()).encode()).hexdigest()


class AuditChainHead(models.Model):
    """The single row that serialises appends: locked, read, advanced, in one transaction."""

    last_seq = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"audit chain at #{self.last_seq}"


class SignInLockout(models.Model):
    """One lockout window, counting the sign-ins it refused.

    The audit history gets one entry when a window opens and one, with the count, when it
    ends, instead of an entry per refused attempt (docs/reliability.md, lockout windows).
    """

    class Scope(models.TextChoices):
        ACCOUNT = "account", "this account from this address"
        ADDRESS = "address", "this address"

    scope = models.CharField(max_length=16, choices=Scope.choices)
    # Empty for an address lockout, which covers every account tried from the address.
    username = models.CharField(max_length=150, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(default=timezone.now)
    refused = models.PositiveIntegerField(default=0)
    closed = models.BooleanField(default=False)

    class Meta:
        verbose_name = "sign-in lockout"
        constraints = [
            models.UniqueConstraint(
                fields=["scope", "username", "ip_address"],
                condition=models.Q(closed=False),
                name="one_open_lockout_window",
            )
        ]
        indexes = [models.Index(fields=["closed", "last_attempt_at"], name="lockout_open")]

    def __str__(self) -> str:
        return f"lockout of {self.username or self.ip_address} since {self.started_at}"
