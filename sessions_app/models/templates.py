"""Launch templates (a team's library of prompts, versioned) and schedules that launch them.

A template's content lives in immutable versions; each save adds one. Every launch from a
template records the version it used (`TemplateLaunch`), its outbox action and, once the
action created it, the session. A schedule's runs are claimed one row per slot, so a slot
runs at most once whatever the number of beat processes and workers (docs/templates.md).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from sessions_app.models.jules import JulesConnection, Session
from sessions_app.models.outbox import OutboxAction
from sessions_app.models.teams import Team


class LaunchTemplate(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="launch_templates")
    name = models.CharField(max_length=120)
    # The newest version, denormalised so the list and the launch read one row.
    current = models.ForeignKey(
        "TemplateVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["team", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="unique_template_name"),
        ]

    def __str__(self) -> str:
        return self.name


class TemplateVersion(models.Model):
    """One saved state of a template; never changed once written."""

    template = models.ForeignKey(LaunchTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    name = models.CharField(max_length=120)
    prompt = models.TextField()
    title_pattern = models.CharField(max_length=200, blank=True)
    # Source names (`sources/github/owner/repo`); one is a default repository, several a
    # fan-out set, none a repoless launch. Resolved against the launching connection.
    repositories = models.JSONField(default=list, blank=True)
    branch = models.CharField(max_length=250, blank=True)
    require_plan_approval = models.BooleanField(default=True)
    auto_create_pr = models.BooleanField(default=False)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # The fields that differ from the version before (all of them for version 1).
    changed = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["template", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="unique_template_version"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.number}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise ValueError("A template version is immutable; save a new version instead.")
        super().save(*args, **kwargs)


class Schedule(models.Model):
    class Cadence(models.TextChoices):
        DAILY = "daily", "Every day"
        WEEKLY = "weekly", "Every week"
        CRON = "cron", "Cron expression"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="schedules")
    template = models.ForeignKey(LaunchTemplate, on_delete=models.CASCADE, related_name="schedules")
    # A removed connection leaves the schedule and its history; its runs then fail, saying so.
    connection = models.ForeignKey(
        JulesConnection, null=True, on_delete=models.SET_NULL, related_name="schedules"
    )
    name = models.CharField(max_length=120)
    cadence = models.CharField(max_length=8, choices=Cadence.choices, default=Cadence.DAILY)
    # Always the effective five-field expression; daily and weekly cadences write it too.
    cron = models.CharField(max_length=120)
    time_of_day = models.TimeField(null=True, blank=True)
    weekday = models.PositiveSmallIntegerField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    variables = models.JSONField(default=dict, blank=True)
    skip_if_running = models.BooleanField(default=True)
    active = models.BooleanField(default=True)
    next_run_at = models.DateTimeField(null=True, blank=True)
    # Runs launch as this person (the last to save or resume the schedule), with their role.
    run_as = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["team", "name"]
        indexes = [models.Index(fields=["active", "next_run_at"], name="schedule_due")]

    def __str__(self) -> str:
        return self.name


class ScheduleRun(models.Model):
    class Status(models.TextChoices):
        LAUNCHED = "launched", "Launched"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "On schedule"
        MANUAL = "manual", "Run now"

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="runs")
    # The slot this run is for; unique per schedule, which is the claim (docs/templates.md).
    slot = models.DateTimeField()
    trigger = models.CharField(max_length=8, choices=Trigger.choices, default=Trigger.SCHEDULE)
    status = models.CharField(max_length=8, choices=Status.choices)
    reason = models.TextField(blank=True)
    version = models.ForeignKey(
        TemplateVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["schedule", "-slot"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "slot"], name="unique_schedule_slot"),
        ]

    def __str__(self) -> str:
        return f"{self.schedule} at {self.slot:%Y-%m-%d %H:%M}"


class TemplateLaunch(models.Model):
    """One session launched from a template version: its action, and later its session."""

    template = models.ForeignKey(LaunchTemplate, on_delete=models.CASCADE, related_name="launches")
    # Versions go only with their template, and its launches with them.
    version = models.ForeignKey(TemplateVersion, on_delete=models.CASCADE, related_name="launches")
    action = models.OneToOneField(
        OutboxAction, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    session = models.ForeignKey(
        Session, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    run = models.ForeignKey(
        ScheduleRun, null=True, blank=True, on_delete=models.CASCADE, related_name="launches"
    )
    launched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source_name = models.CharField(max_length=300, blank=True)
    variables = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "template launches"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["template", "-created_at"], name="template_launch_recent")]

    def __str__(self) -> str:
        return f"{self.version} launch"

    @property
    def the_session(self) -> Session | None:
        """The session, linked already or through the delivered action."""
        if self.session is not None:
            return self.session
        return self.action.session if self.action is not None else None
