"""What the API reads and answers (the OpenAPI schema is made from these)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from ninja import Field, Schema


class ErrorBody(Schema):
    code: str
    message: str
    fields: dict[str, list[str]]


class ErrorOut(Schema):
    error: ErrorBody


class OutputOut(Schema):
    position: int
    kind: str
    url: str
    title: str
    description: str
    base_ref: str
    head_ref: str
    source: str
    patch: str
    base_commit_id: str
    suggested_commit_message: str


class SessionOut(Schema):
    id: int
    team: str
    connection: int
    remote_id: str
    title: str
    state: str
    repo: str
    starting_branch: str
    create_time: dt.datetime | None
    last_activity_at: dt.datetime | None
    pr_url: str
    archived: bool
    deleted_remotely: bool
    launched_by: str | None

    @staticmethod
    def resolve_title(obj: Any) -> str:
        return str(obj.display_title)

    @staticmethod
    def resolve_team(obj: Any) -> str:
        return str(obj.team.slug)

    @staticmethod
    def resolve_connection(obj: Any) -> int:
        return int(obj.connection_id)

    @staticmethod
    def resolve_launched_by(obj: Any) -> str | None:
        return obj.launched_by.get_username() if obj.launched_by_id else None


class SessionDetailOut(SessionOut):
    prompt: str
    outputs: list[OutputOut]

    @staticmethod
    def resolve_outputs(obj: Any) -> list[Any]:
        return list(obj.outputs.order_by("position"))


class SessionPage(Schema):
    items: list[SessionOut]
    next_cursor: str | None


class ActivityOut(Schema):
    id: int
    kind: str
    originator: str
    description: str
    create_time: dt.datetime | None
    message: str
    plan_id: str
    plan_steps: list[Any]
    progress_title: str
    progress_description: str
    failure_reason: str
    artifacts: list[Any]


class ActivityPage(Schema):
    items: list[ActivityOut]


class ActionOut(Schema):
    id: uuid.UUID
    kind: str
    status: str
    session: int | None
    created_at: dt.datetime
    last_error: str


class LaunchIn(Schema):
    connection: int = Field(..., ge=1, le=2**63 - 1)
    prompt: str = Field(..., min_length=1, max_length=20000)
    title: str = Field("", max_length=200)
    source: str = Field("", max_length=300, description="A source name, as Jules gives it.")
    starting_branch: str = Field("", max_length=250)
    require_plan_approval: bool = True
    auto_create_pr: bool = False
    any_connection: bool = Field(
        False,
        description="Start on any of the team's connections that has the source, whichever "
        "has room first (docs/launch-queue.md).",
    )


class MessageIn(Schema):
    prompt: str = Field(..., min_length=1, max_length=20000)


class TeamOut(Schema):
    slug: str
    name: str
    role: str
    require_plan_approval: bool
    forbid_self_approval: bool


class MemberOut(Schema):
    username: str
    role: str
    service_token: bool
    joined_at: dt.datetime


class AuditEntryOut(Schema):
    seq: int
    created_at: dt.datetime
    actor: str
    team: int | None
    action: str
    target_type: str
    target_id: str
    target_label: str
    details: dict[str, Any]

    @staticmethod
    def resolve_actor(obj: Any) -> str:
        return str(obj.actor_label)

    @staticmethod
    def resolve_team(obj: Any) -> int | None:
        return int(obj.team_id) if obj.team_id else None


class AuditPage(Schema):
    items: list[AuditEntryOut]
    next_cursor: str | None


class EventOut(Schema):
    """A notification event, in the generic webhooks' payload (docs/notifications.md)."""

    id: int
    type: str
    version: int
    timestamp: dt.datetime
    data: dict[str, Any]


class EventPage(Schema):
    items: list[EventOut]
    next_after: int = Field(..., description="Pass as `after` to get the events after these.")


class ServiceTokenOut(Schema):
    id: uuid.UUID
    name: str
    prefix: str
    bot: str
    role: str
    scopes: list[str]
    created_by: str | None
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None
