"""The audit vocabulary: every action an entry can record, with its words for people.

Services, the sync, the sign-in signals, the Django admin and the audit filters all use
these; a prefix (`session`, `sync`, ...) groups them in the filter menu.
"""

from __future__ import annotations

from django.db import models


class AuditAction(models.TextChoices):
    SESSION_LAUNCH = "session.launch", "Session launched"
    SESSION_APPROVE = "session.approve", "Plan approved"
    SESSION_MESSAGE = "session.message", "Message sent"
    SESSION_ARCHIVE = "session.archive", "Session archived"
    SESSION_UNARCHIVE = "session.unarchive", "Session unarchived"
    SESSION_DELETE = "session.delete", "Session deleted"
    SYNC_STATE_CHANGED = "sync.state_changed", "State changed on Jules"
    SYNC_PLAN_GENERATED = "sync.plan_generated", "Plan generated"
    SYNC_PLAN_APPROVED = "sync.plan_approved", "Plan approval seen on Jules"
    SYNC_PR_OPENED = "sync.pr_opened", "Pull request opened"
    SYNC_OUTPUT_ADDED = "sync.output_added", "Output added"
    SYNC_FAILED = "sync.failed", "Session failed"
    SYNC_DELETED = "sync.deleted", "Deleted on Jules"
    CONNECTION_ADD = "connection.add", "Connection added"
    CONNECTION_ROTATE = "connection.rotate", "API key rotated"
    CONNECTION_DISABLE = "connection.disable", "Connection disabled"
    CONNECTION_ENABLE = "connection.enable", "Connection enabled"
    CONNECTION_CHANGE = "connection.change", "Connection edited"
    CONNECTION_DELETE = "connection.delete", "Connection removed"
    MEMBER_ADD = "member.add", "Member added"
    MEMBER_ROLE_CHANGE = "member.role_change", "Role changed"
    MEMBER_REMOVE = "member.remove", "Member removed"
    MEMBER_INVITE = "member.invite", "Invitation sent"
    MEMBER_ACCEPT = "member.accept", "Invitation accepted"
    MEMBER_DECLINE = "member.decline", "Invitation declined"
    MEMBER_REVOKE = "member.revoke", "Invitation revoked"
    POLICY_CHANGE = "policy.change", "Approval policy changed"
    TEMPLATE_CREATE = "template.create", "Launch template created"
    TEMPLATE_CHANGE = "template.change", "Launch template changed"
    SCHEDULE_CREATE = "schedule.create", "Schedule created"
    SCHEDULE_CHANGE = "schedule.change", "Schedule changed"
    SCHEDULE_PAUSE = "schedule.pause", "Schedule paused"
    SCHEDULE_RESUME = "schedule.resume", "Schedule resumed"
    SCHEDULE_RUN = "schedule.run", "Scheduled run"
    CHANNEL_ADD = "channel.add", "Team channel added"
    CHANNEL_ROTATE = "channel.rotate", "Team channel secret rotated"
    CHANNEL_ENABLE = "channel.enable", "Team channel enabled"
    CHANNEL_DISABLE = "channel.disable", "Team channel disabled"
    CHANNEL_REDELIVER = "channel.redeliver", "Notification redelivered"
    NOTIFY_SETTINGS_CHANGE = "notify.settings_change", "Notification settings changed"
    TEAM_CREATE = "team.create", "Team created (admin)"
    TEAM_DELETE = "team.delete", "Team deleted (admin)"
    TOKEN_CREATE = "token.create", "API token created"
    TOKEN_REVOKE = "token.revoke", "API token revoked"
    AUTH_SIGN_IN = "auth.sign_in", "Signed in"
    AUTH_SIGN_IN_FAILED = "auth.sign_in_failed", "Failed sign-in"
    AUTH_LOCKED_OUT = "auth.locked_out", "Locked out"
    AUTH_LOCKOUT_ENDED = "auth.lockout_ended", "Lockout ended"
    AUTH_SIGN_OUT_ALL = "auth.sign_out_all", "Everyone signed out (operator)"
    QUEUE_CANCEL = "queue.cancel", "Queued launch cancelled"
    QUEUE_MOVE = "queue.move", "Queued launch moved"
    QUEUE_CAPS = "queue.caps", "Launch caps changed"


GROUP_LABELS = {
    "session": "Any session action",
    "sync": "Any change seen on Jules",
    "connection": "Any connection change",
    "member": "Any membership change",
    "policy": "",
    "template": "Any launch template change",
    "schedule": "Any schedule change or run",
    "channel": "Any team channel change",
    "notify": "",
    "team": "",
    "token": "Any API token change",
    "auth": "Any sign-in event",
    "queue": "Any launch queue change",
}


def filter_choices() -> list[tuple[str, str]]:
    """The filter menu: each group's wildcard (when it has one) before its actions."""
    choices: list[tuple[str, str]] = []
    seen: set[str] = set()
    for action in AuditAction:
        group = action.value.split(".", 1)[0]
        if group not in seen:
            seen.add(group)
            if GROUP_LABELS.get(group):
                choices.append((f"{group}.*", GROUP_LABELS[group]))
        choices.append((action.value, action.label))
    return choices


def session_action(kind: str) -> str:
    """The audit action of an outbox kind (launch, approve, message, ...)."""
    return AuditAction(f"session.{kind}").value
