"""The cache of the Jules API: connections, sources, sessions, outputs and activities.

Pages read only these tables; the sync engine (`sessions_app.sync`) keeps them true.
Remote names and ids are stored verbatim, since they are opaque (docs/jules-api.md#names-and-ids).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from sessions_app.connections import crypto
from sessions_app.models.teams import Team


class SessionState(models.TextChoices):
    STATE_UNSPECIFIED = "STATE_UNSPECIFIED", "Unknown"
    QUEUED = "QUEUED", "Queued"
    PLANNING = "PLANNING", "Planning"
    AWAITING_PLAN_APPROVAL = "AWAITING_PLAN_APPROVAL", "Awaiting plan approval"
    AWAITING_USER_FEEDBACK = "AWAITING_USER_FEEDBACK", "Awaiting feedback"
    IN_PROGRESS = "IN_PROGRESS", "In progress"
    PAUSED = "PAUSED", "Paused"
    FAILED = "FAILED", "Failed"
    COMPLETED = "COMPLETED", "Completed"


# COMPLETED is not strictly final (sessions revive), but these are the states in which a
# session rests; everything else is re-read on the fast cadence.
RESTING_STATES = frozenset({SessionState.COMPLETED, SessionState.FAILED})
ATTENTION_STATES = frozenset(
    {SessionState.AWAITING_PLAN_APPROVAL, SessionState.AWAITING_USER_FEEDBACK}
)
BUSY_STATES = frozenset({SessionState.QUEUED, SessionState.PLANNING, SessionState.IN_PROGRESS})
# States in which the agent listens to sendMessage; COMPLETED and PAUSED revive the session:
# docs/jules-api.md#sendmessage-outside-the-documented-states
MESSAGE_STATES = frozenset(
    {
        SessionState.AWAITING_USER_FEEDBACK,
        SessionState.AWAITING_PLAN_APPROVAL,
        SessionState.IN_PROGRESS,
        SessionState.PAUSED,
        SessionState.COMPLETED,
        SessionState.PLANNING,
        SessionState.QUEUED,
    }
)


class ActivityKind(models.TextChoices):
    """The activity kinds of docs/jules-api.md#activity-kinds, with the timeline's labels."""

    AGENT_MESSAGED = "agentMessaged", "Agent"
    USER_MESSAGED = "userMessaged", "Message"
    PLAN_GENERATED = "planGenerated", "Plan"
    PLAN_APPROVED = "planApproved", "Plan approved"
    PROGRESS_UPDATED = "progressUpdated", "Progress"
    SESSION_COMPLETED = "sessionCompleted", "Completed"
    SESSION_FAILED = "sessionFailed", "Failed"


class SyncStatus(models.TextChoices):
    NEVER = "never", "Not synced yet"
    SYNCING = "syncing", "Syncing"
    OK = "ok", "Up to date"
    ERROR = "error", "Last sync failed"
    BROKEN = "broken", "Broken: needs attention"
    DISABLED = "disabled", "Disabled"


class JulesConnection(models.Model):
    """One Jules account (one API key) whose sessions a team shares."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="connections")
    label = models.CharField(max_length=100)
    api_key_encrypted = models.TextField(editable=False)
    base_url = models.URLField(max_length=300)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    key_rotated_at = models.DateTimeField(null=True, blank=True)

    sync_status = models.CharField(
        max_length=16, choices=SyncStatus.choices, default=SyncStatus.NEVER
    )
    last_sync_started_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_list_at = models.DateTimeField(null=True, blank=True)
    last_full_sync_at = models.DateTimeField(null=True, blank=True)
    last_sources_sync_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # Progress of the sync under way, for the progress bar on the connection's page.
    sync_phase = models.CharField(max_length=32, blank=True)
    sync_done = models.PositiveIntegerField(default=0)
    sync_total = models.PositiveIntegerField(default=0)
    # A claim by conditional update, so two workers never sync one connection at once.
    sync_claimed_until = models.DateTimeField(null=True, blank=True)
    sync_claim_token = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["team", "label"]
        constraints = [
            models.UniqueConstraint(fields=["team", "label"], name="unique_connection_label"),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.team})"

    def set_api_key(self, api_key: str) -> None:
        self.api_key_encrypted = crypto.encrypt(api_key)

    def get_api_key(self) -> str:
        return crypto.decrypt(self.api_key_encrypted)

    @property
    def progress_percent(self) -> int:
        if not self.sync_total:
            return 0
        return min(100, int(100 * self.sync_done / self.sync_total))


class Source(models.Model):
    """A repository connected to a Jules account."""

    connection = models.ForeignKey(
        JulesConnection, on_delete=models.CASCADE, related_name="sources"
    )
    name = models.CharField(max_length=300)
    source_id = models.CharField(max_length=300)
    owner = models.CharField(max_length=200, blank=True)
    repo = models.CharField(max_length=200, blank=True)
    is_private = models.BooleanField(default=False)
    default_branch = models.CharField(max_length=250, blank=True)
    branches = models.JSONField(default=list, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    synced_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["owner", "repo"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "name"], name="unique_source_name"),
        ]

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}" if self.owner else self.source_id


class Session(models.Model):
    """A cached Jules session."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="sessions")
    connection = models.ForeignKey(
        JulesConnection, on_delete=models.CASCADE, related_name="sessions"
    )
    remote_id = models.CharField(max_length=40)
    name = models.CharField(max_length=80)
    prompt = models.TextField(blank=True)
    title = models.CharField(max_length=500, blank=True)
    state = models.CharField(
        max_length=32, choices=SessionState.choices, default=SessionState.STATE_UNSPECIFIED
    )
    state_raw = models.CharField(max_length=64, blank=True)
    source_name = models.CharField(max_length=300, blank=True)
    # "owner/repo" (or the source id), denormalised so the list can filter without a join.
    repo = models.CharField(max_length=300, blank=True)
    starting_branch = models.CharField(max_length=250, blank=True)
    working_branch = models.CharField(max_length=250, blank=True)
    environment_variables_enabled = models.BooleanField(default=False)
    require_plan_approval = models.BooleanField(null=True)
    automation_mode = models.CharField(max_length=40, blank=True)
    create_time = models.DateTimeField(null=True)
    update_time = models.DateTimeField(null=True)
    url = models.URLField(max_length=300, blank=True)
    archived = models.BooleanField(default=False)
    # The first pull request, denormalised for the list's PR link.
    pr_url = models.URLField(max_length=500, blank=True)
    raw = models.JSONField(default=dict)

    launched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="launched_sessions",
    )
    # Sync bookkeeping.
    last_activity_at = models.DateTimeField(null=True, blank=True)
    last_activity_time_raw = models.CharField(max_length=40, blank=True)
    activity_count = models.PositiveIntegerField(default=0)
    # The updateTime whose activities were read completely; when it differs from
    # `update_time`, a pass that was interrupted (or failed for this session) reads again.
    activities_read_for = models.DateTimeField(null=True, blank=True)
    next_poll_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(default=timezone.now)
    deleted_remotely = models.BooleanField(default=False)

    class Meta:
        ordering = ["-create_time", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "remote_id"], name="unique_session_per_connection"
            ),
        ]
        indexes = [
            models.Index(fields=["team", "-create_time", "-id"], name="session_team_created"),
            models.Index(fields=["team", "state", "-create_time"], name="session_team_state"),
            models.Index(fields=["team", "repo", "-create_time"], name="session_team_repo"),
            models.Index(
                fields=["team", "launched_by", "-create_time"], name="session_team_launcher"
            ),
            models.Index(fields=["team", "-update_time"], name="session_team_updated"),
            models.Index(fields=["connection", "state"], name="session_conn_state"),
            models.Index(fields=["connection", "next_poll_at"], name="session_conn_poll"),
            # The list's order across every team a user is in. On PostgreSQL it carries the
            # columns the list filters on most, so a deep page skips its offset and the
            # counts per state read in an index-only scan (SQLite ignores `include`).
            models.Index(
                fields=["-create_time", "-id"],
                include=["team", "archived", "state", "connection", "launched_by"],
                name="session_created_cover",
            ),
            # The newest write per connection: part of the key of the list's cached counts.
            models.Index(fields=["connection", "-synced_at"], name="session_conn_synced"),
            # The list's counts per state, read from this narrow index alone.
            models.Index(fields=["team", "archived", "state"], name="session_team_arch_state"),
            # The few sessions deleted on Jules, which the list counts apart.
            models.Index(
                fields=["team", "archived", "state"],
                name="session_deleted_state",
                condition=models.Q(deleted_remotely=True),
            ),
        ]

    def __str__(self) -> str:
        return self.display_title

    @property
    def display_title(self) -> str:
        if self.title:
            return self.title
        first_line = (self.prompt or "").strip().splitlines()
        return first_line[0][:200] if first_line else f"Session {self.remote_id}"

    @property
    def can_change(self) -> bool:
        """Whether the session may still move, so its page keeps polling."""
        return self.state not in RESTING_STATES and not self.deleted_remotely

    @property
    def needs_attention(self) -> bool:
        return self.state in ATTENTION_STATES

    @property
    def accepts_messages(self) -> bool:
        return self.state in MESSAGE_STATES and not self.deleted_remotely


class SessionOutput(models.Model):
    """One entry of a session's `outputs`: a pull request or a change set."""

    class Kind(models.TextChoices):
        PULL_REQUEST = "pullRequest", "Pull request"
        CHANGE_SET = "changeSet", "Change set"
        UNKNOWN = "unknown", "Unknown"

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="outputs")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    url = models.URLField(max_length=500, blank=True)
    title = models.CharField(max_length=500, blank=True)
    description = models.TextField(blank=True)
    base_ref = models.CharField(max_length=250, blank=True)
    head_ref = models.CharField(max_length=250, blank=True)
    source = models.CharField(max_length=300, blank=True)
    patch = models.TextField(blank=True)
    base_commit_id = models.CharField(max_length=64, blank=True)
    suggested_commit_message = models.TextField(blank=True)
    raw = models.JSONField(default=dict)

    class Meta:
        ordering = ["session", "position"]
        constraints = [
            models.UniqueConstraint(fields=["session", "position"], name="unique_output_position"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of session {self.session_id}"


class Activity(models.Model):
    """One event of a session's timeline."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="activities")
    remote_id = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    # agentMessaged, userMessaged, planGenerated, planApproved, progressUpdated,
    # sessionCompleted, sessionFailed, or "unknown" (kept raw, shown by description).
    kind = models.CharField(max_length=32)
    originator = models.CharField(max_length=32, default="system")
    description = models.TextField(blank=True)
    create_time = models.DateTimeField(null=True)
    create_time_raw = models.CharField(max_length=40, blank=True)
    message = models.TextField(blank=True)
    plan_id = models.CharField(max_length=64, blank=True)
    # [{"id", "title", "description", "index"}, ...] for planGenerated.
    plan_steps = models.JSONField(default=list, blank=True)
    progress_title = models.TextField(blank=True)
    progress_description = models.TextField(blank=True)
    failure_reason = models.TextField(blank=True)
    # Normalised artifacts: [{"kind": "changeSet", "patch", "base_commit_id",
    # "suggested_commit_message", "source"} | {"kind": "media", "mime_type", "data"} |
    # {"kind": "bashOutput", "command", "output", "exit_code"} | {"kind": "unknown", "raw"}].
    artifacts = models.JSONField(default=list, blank=True)
    raw = models.JSONField(default=dict)

    class Meta:
        verbose_name_plural = "activities"
        ordering = ["create_time", "id"]
        constraints = [
            models.UniqueConstraint(fields=["session", "remote_id"], name="unique_activity"),
        ]
        indexes = [
            models.Index(fields=["session", "create_time"], name="activity_session_time"),
            models.Index(fields=["session", "kind"], name="activity_session_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} at {self.create_time_raw}"


class SessionTransition(models.Model):
    """A change the sync observed: the raw material of the audit history and notifications."""

    class Kind(models.TextChoices):
        DISCOVERED = "discovered", "Discovered"
        STATE_CHANGED = "state_changed", "State changed"
        PLAN_GENERATED = "plan_generated", "Plan generated"
        PLAN_APPROVED = "plan_approved", "Plan approved"
        OUTPUT_ADDED = "output_added", "Output added"
        PR_OPENED = "pr_opened", "Pull request opened"
        FAILED = "failed", "Failed"
        DELETED = "deleted", "Deleted on Jules"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="transitions")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    from_state = models.CharField(max_length=32, blank=True)
    to_state = models.CharField(max_length=32, blank=True)
    details = models.JSONField(default=dict, blank=True)
    observed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["observed_at", "id"]
        indexes = [
            models.Index(fields=["session", "observed_at"], name="transition_session_time"),
            models.Index(fields=["team", "-observed_at"], name="transition_team_time"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of session {self.session_id}"
