"""The analytics rollup: one row of facts per cached session (docs/analytics.md).

The sync keeps each row in the same transaction as the rows it derives from, so the
analytics pages aggregate this narrow table instead of reading activities.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from sessions_app.models.jules import JulesConnection, Session
from sessions_app.models.teams import Team


class SessionFacts(models.Model):
    session = models.OneToOneField(
        Session, primary_key=True, on_delete=models.CASCADE, related_name="facts"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    connection = models.ForeignKey(JulesConnection, on_delete=models.CASCADE, related_name="+")
    repo = models.CharField(max_length=300, blank=True)
    launched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The day of `create_time` in the portal's time zone (the date range filters on it).
    created_day = models.DateField(null=True)
    state = models.CharField(max_length=32, blank=True)
    deleted_remotely = models.BooleanField(default=False)
    outside_portal = models.BooleanField(default=False)
    has_pr = models.BooleanField(default=False)
    seconds_to_plan = models.PositiveIntegerField(null=True, blank=True)
    seconds_awaiting_approval = models.PositiveIntegerField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    seconds_awaiting_answers = models.PositiveIntegerField(null=True, blank=True)
    seconds_duration = models.PositiveIntegerField(null=True, blank=True)
    failure_reason = models.CharField(max_length=200, blank=True)
    plans_generated = models.PositiveIntegerField(default=0)
    lines_added = models.PositiveIntegerField(default=0)
    lines_removed = models.PositiveIntegerField(default=0)
    # When the row last changed: a re-sync that changes nothing leaves it alone.
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "session facts"
        indexes = [
            models.Index(fields=["team", "created_day"], name="facts_team_day"),
            # The newest change per team: the version of the page's cached figures.
            models.Index(fields=["team", "-computed_at"], name="facts_team_computed"),
        ]

    def __str__(self) -> str:
        return f"facts of session {self.session_id}"
