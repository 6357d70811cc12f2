"""The launch queue: each Jules account's caps, and the launches waiting for a slot.

Every launch is an outbox action (`OutboxAction.Kind.LAUNCH`) with a ticket here; the
outbox asks the gate (`sessions_app/launch_queue/gate.py`) before it creates the session.
Why and how: docs/launch-queue.md.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from sessions_app.models.jules import JulesConnection, Session
from sessions_app.models.outbox import OutboxAction
from sessions_app.models.teams import Team

# Daily and concurrent caps per plan: docs/jules-api.md#quotas-and-rate-limits
TIER_CAPS = {"free": (15, 3), "pro": (100, 15), "ultra": (300, 60)}


class LaunchCaps(models.Model):
    """The caps of one connection's account: a plan tier, custom numbers, or learned."""

    class Tier(models.TextChoices):
        UNSET = "", "Not set: learn them from Jules' refusals"
        FREE = "free", "15 a day, 3 at once"
        PRO = "pro", "100 a day, 15 at once"
        ULTRA = "ultra", "300 a day, 60 at once"
        CUSTOM = "custom", "Custom numbers"

    connection = models.OneToOneField(
        JulesConnection, primary_key=True, on_delete=models.CASCADE, related_name="launch_caps"
    )
    tier = models.CharField(max_length=16, choices=Tier.choices, blank=True)
    daily_cap = models.PositiveIntegerField(null=True, blank=True)
    concurrent_cap = models.PositiveIntegerField(null=True, blank=True)
    # Lowered when Jules refuses a create over a quota while no caps are set.
    learned_daily_cap = models.PositiveIntegerField(null=True, blank=True)
    learned_concurrent_cap = models.PositiveIntegerField(null=True, blank=True)
    learned_at = models.DateTimeField(null=True, blank=True)
    # Parallel creates fail with a misleading "Could not get source": docs/jules-api.md#parallel-creates
    max_in_flight = models.PositiveSmallIntegerField(default=2)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "launch caps"

    def __str__(self) -> str:
        return f"caps of connection {self.connection_id}"

    def effective(self) -> tuple[int | None, int | None]:
        """(daily, concurrent): the tier's or the custom numbers, else the learned ones."""
        if self.tier in TIER_CAPS:
            return TIER_CAPS[self.tier]
        if self.tier == self.Tier.CUSTOM:
            return self.daily_cap, self.concurrent_cap
        return self.learned_daily_cap, self.learned_concurrent_cap

    @property
    def is_set(self) -> bool:
        return bool(self.tier)


class LaunchTicket(models.Model):
    """One launch's place in its team's queue."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        CREATING = "creating", "Being created"
        STARTED = "started", "Started"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Wait(models.TextChoices):
        NONE = "", "Not waiting"
        POSITION = "position", "Behind earlier launches"
        DAILY = "daily", "Daily cap reached"
        CONCURRENT = "concurrent", "Concurrent cap reached"
        IN_FLIGHT = "in_flight", "Other creates in flight"
        DISABLED = "disabled", "Connection disabled"
        REFUSED = "refused", "Jules refused; retrying"

    action = models.OneToOneField(
        OutboxAction, primary_key=True, on_delete=models.CASCADE, related_name="ticket"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    # Where it will be (or was) created; an "any connection" launch may move.
    connection = models.ForeignKey(JulesConnection, on_delete=models.CASCADE, related_name="+")
    launcher = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    any_connection = models.BooleanField(default=False)
    source_name = models.CharField(max_length=300, blank=True)
    # The order is (lane, seq): lane is the launcher's turn (round robin), seq the time.
    lane = models.PositiveIntegerField(default=0)
    seq = models.BigIntegerField(default=0)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    wait_reason = models.CharField(max_length=16, choices=Wait.choices, blank=True)
    wait_detail = models.CharField(max_length=300, blank=True)
    rerun_of = models.ForeignKey(
        Session, null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns"
    )
    created_at = models.DateTimeField(default=timezone.now)
    admitted_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["team", "status", "lane", "seq"], name="ticket_team_order"),
            models.Index(fields=["connection", "status"], name="ticket_conn_status"),
        ]

    def __str__(self) -> str:
        return f"launch {self.action_id} {self.status}"

    @property
    def order(self) -> tuple[int, int]:
        return (self.lane, self.seq)
