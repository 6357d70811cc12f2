"""User actions on their way to the Jules API.

A service writes the audit entry and an outbox row in one transaction; a task delivers the
row, and a periodic sweep redelivers what a lost task or a dead broker left behind. The
row's id is the idempotency key of the user's intent.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from sessions_app.models.jules import JulesConnection, Session
from sessions_app.models.teams import Team


class OutboxAction(models.Model):
    class Kind(models.TextChoices):
        LAUNCH = "launch", "Launch"
        APPROVE = "approve", "Approve plan"
        MESSAGE = "message", "Message"
        ARCHIVE = "archive", "Archive"
        UNARCHIVE = "unarchive", "Unarchive"
        DELETE = "delete", "Delete"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    connection = models.ForeignKey(JulesConnection, on_delete=models.CASCADE, related_name="+")
    session = models.ForeignKey(
        Session, null=True, blank=True, on_delete=models.SET_NULL, related_name="actions"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    # When a task for it was last published (runnable from then): the sweep leaves rows
    # that a queued task holds alone (outbox/requeue.py).
    enqueued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="outbox_due"),
            models.Index(fields=["session", "created_at"], name="outbox_session"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.status}"

    @property
    def is_open(self) -> bool:
        return self.status in {self.Status.PENDING, self.Status.SENDING}
