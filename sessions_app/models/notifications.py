"""Events, and their delivery to people and to other systems (docs/notifications.md).

An event is recorded once per underlying change (its `key` is unique); fan-out then makes
one in-portal notification per person and one delivery row per (event, recipient,
channel), whose `key` is unique too, so a re-run never adds a second one.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from sessions_app.connections import crypto
from sessions_app.models.jules import JulesConnection, Session
from sessions_app.models.teams import Team


class EventKind(models.TextChoices):
    PLAN_AWAITING = "plan.awaiting_approval", "Plan awaiting approval"
    APPROVAL_OVERDUE = "plan.approval_overdue", "Approval overdue"
    APPROVED_OUTSIDE = "plan.approved_outside", "Plan approved outside the portal"
    FEEDBACK_AWAITING = "session.awaiting_feedback", "Question from the agent"
    COMPLETED = "session.completed", "Session completed"
    FAILED = "session.failed", "Session failed"
    PAUSED = "session.paused", "Session paused"
    STALLED = "session.stalled", "Session stalled"
    LAUNCHED_OUTSIDE = "session.launched_outside", "Session launched outside the portal"
    CONNECTION_BROKEN = "connection.broken", "Connection's key refused"
    ENDPOINT_DISABLED = "channel.disabled", "Team channel disabled"


class Event(models.Model):
    key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=40, choices=EventKind.choices)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    session = models.ForeignKey(
        Session, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    connection = models.ForeignKey(
        JulesConnection, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # The person it concerns most (the launcher), when there is one.
    concerns = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    # A path inside the portal (the session, the approval); SITE_URL makes it absolute.
    link = models.CharField(max_length=300, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    fanned_out_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["fanned_out_at", "created_at"], name="event_fan_out"),
            models.Index(fields=["team", "-created_at"], name="event_team_time"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.title}"


class Notification(models.Model):
    """An event in a person's portal inbox (the bell)."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="notifications")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "user"], name="unique_notification"),
        ]
        indexes = [models.Index(fields=["user", "read_at"], name="notification_unread")]

    def __str__(self) -> str:
        return f"{self.event} for {self.user}"


class Channel(models.TextChoices):
    PORTAL = "portal", "In the portal"
    EMAIL = "email", "Email"


class NotificationPreference(models.Model):
    """A person's choice for one team, event kind and channel; without a row, the team's
    default (or the built-in one) holds."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=40, choices=EventKind.choices)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    enabled = models.BooleanField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "team", "kind", "channel"], name="unique_notification_preference"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} by {self.channel}: {'on' if self.enabled else 'off'}"


class DigestPreference(models.Model):
    """A person's email rhythm for one team: as it happens (no row), or one digest an hour
    or a day (docs/notifications.md, "Digests")."""

    class Frequency(models.TextChoices):
        IMMEDIATE = "immediate", "As it happens"
        HOURLY = "hourly", "One digest an hour"
        DAILY = "daily", "One digest a day"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    frequency = models.CharField(max_length=16, choices=Frequency.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "team"], name="unique_digest_preference"),
        ]

    def __str__(self) -> str:
        return f"{self.get_frequency_display()} for team {self.team_id}"


class TeamNotificationSettings(models.Model):
    """What a team's admins set: the clocks of stalls, overdue approvals and reminders,
    and whether email is on by default."""

    team = models.OneToOneField(
        Team, on_delete=models.CASCADE, related_name="notification_settings"
    )
    stalled_after_minutes = models.PositiveIntegerField(default=30)
    approval_target_minutes = models.PositiveIntegerField(default=5)
    reminder_minutes = models.PositiveIntegerField(default=10)
    email_by_default = models.BooleanField(default=True)

    class Meta:
        verbose_name_plural = "team notification settings"

    def __str__(self) -> str:
        return f"Notification settings of team {self.team_id}"


class Endpoint(models.Model):
    """A team channel: a generic (Standard Webhooks) webhook, Slack, Google Chat or Teams."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "Webhook (Standard Webhooks)"
        SLACK = "slack", "Slack"
        GOOGLE_CHAT = "google_chat", "Google Chat"
        TEAMS = "teams", "Microsoft Teams"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="endpoints")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    label = models.CharField(max_length=100)
    url_encrypted = models.TextField(editable=False)
    secret_encrypted = models.TextField(blank=True, editable=False)
    # Empty means every kind.
    event_kinds = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["team", "label"]
        constraints = [
            models.UniqueConstraint(fields=["team", "label"], name="unique_endpoint_label"),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.get_kind_display()})"

    # Incoming-webhook URLs of Slack, Chat and Teams carry their own credentials.
    def set_url(self, url: str) -> None:
        self.url_encrypted = crypto.encrypt(url)

    def get_url(self) -> str:
        return crypto.decrypt(self.url_encrypted)

    def set_secret(self, secret: str) -> None:
        self.secret_encrypted = crypto.encrypt(secret)

    def get_secret(self) -> str:
        return crypto.decrypt(self.secret_encrypted) if self.secret_encrypted else ""

    def wants(self, kind: str) -> bool:
        return self.enabled and (not self.event_kinds or kind in self.event_kinds)


class Delivery(models.Model):
    """One event on its way to one recipient on one channel (email or a team channel).

    `key` is the idempotency key (event, recipient, channel); `id` is the webhook id, the
    same for every retry and redelivery.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"
        # An email that goes out in its person's next digest, not on its own.
        DIGEST = "digest", "Waiting for the digest"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    key = models.CharField(max_length=200, unique=True)
    # For a digest, the first event it covers.
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=16)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    endpoint = models.ForeignKey(
        Endpoint, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    # Denormalised, so deliveries of one session to one endpoint go out in order.
    session_id_ref = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    # When a task for it was last published (runnable from then): the sweep leaves rows
    # that a queued task holds alone (outbox/requeue.py).
    enqueued_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # An email that went out inside another delivery's message (grouping, digests).
    grouped_into = models.UUIDField(null=True, blank=True)
    # Digests: the frequency and the end of the period, on the waiting emails and on the
    # digest that covers them (whose key is unique per person, team and period).
    digest = models.CharField(max_length=16, blank=True)
    digest_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due"),
            models.Index(fields=["endpoint", "-created_at"], name="delivery_endpoint_log"),
            models.Index(
                fields=["endpoint", "session_id_ref", "created_at"], name="delivery_endpoint_order"
            ),
            models.Index(fields=["status", "digest_until"], name="delivery_digest_due"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.status}"

    @property
    def webhook_id(self) -> str:
        return f"msg_{self.id.hex}"
