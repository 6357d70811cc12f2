"""Mapping the client's typed resources onto cache rows; pure functions, no queries."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

from django.conf import settings

from jules import resources as jr
from sessions_app.models import (
    Activity,
    JulesConnection,
    Session,
    SessionOutput,
    SessionState,
    SessionTransition,
)
from sessions_app.models.jules import ATTENTION_STATES, BUSY_STATES, ActivityKind

# Resting sessions are re-read for this long after their last change, to catch revivals.
REVIVAL_WINDOW = dt.timedelta(hours=6)
KNOWN_STATES = frozenset(SessionState.values)

# What the portal accepts as a session id: the API's ids are decimal digits
# (docs/jules-api.md); letters, `-` and `_` are allowed too, but never `/`, `~` (kept for
# tombstones), `.` or anything a URL would read differently. At most the column's length.
SESSION_ID_LENGTH = Session._meta.get_field("remote_id").max_length or 40
ACTIVITY_ID_LENGTH = Activity._meta.get_field("remote_id").max_length or 64
SESSION_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{SESSION_ID_LENGTH}}}")
ACTIVITY_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{ACTIVITY_ID_LENGTH}}}")
# Times are stored only inside these bounds, so that any time zone and the sync's pivot
# arithmetic stay within the calendar; others are stored as unknown (the raw JSON keeps
# them).
EARLIEST_TIME = dt.datetime(2, 1, 1, tzinfo=dt.UTC)
LATEST_TIME = dt.datetime(9998, 12, 31, tzinfo=dt.UTC)
TOMBSTONE = "~superseded-"

SESSION_FIELDS = [
    "name",
    "prompt",
    "title",
    "state",
    "state_raw",
    "source_name",
    "repo",
    "starting_branch",
    "working_branch",
    "environment_variables_enabled",
    "require_plan_approval",
    "automation_mode",
    "create_time",
    "update_time",
    "url",
    "archived",
    "pr_url",
    "raw",
    "next_poll_at",
    "synced_at",
    "deleted_remotely",
]


def _named(value: object) -> str:
    """A remote id as an error message may quote it: printable and short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def safe_time(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or EARLIEST_TIME <= value <= LATEST_TIME:
        return value
    return None


def usable_sessions(remotes: Sequence[jr.Session], errors: list[str]) -> list[jr.Session]:
    """The remote sessions the portal can store, with times it can compute with; each one
    left out is named in `errors`."""
    usable = []
    for remote in remotes:
        if not remote.id or not SESSION_ID.fullmatch(remote.id):
            errors.append(f"session {_named(remote.id)}: skipped, not an id the portal accepts")
            continue
        remote.create_time = safe_time(remote.create_time)
        remote.update_time = safe_time(remote.update_time)
        usable.append(remote)
    return usable


def usable_activities(
    session_id: str, items: list[jr.Activity], errors: list[str]
) -> list[jr.Activity]:
    """`usable_sessions` for the activities of one session."""
    usable = []
    for remote in items:
        remote.create_time = safe_time(remote.create_time)
        if remote.id and not ACTIVITY_ID.fullmatch(remote.id):
            errors.append(
                f"session {session_id}, activity {_named(remote.id)}: skipped, "
                "not an id the portal accepts"
            )
            continue
        usable.append(remote)
    return usable


def is_same_session(current: Session, remote: jr.Session) -> bool:
    """Whether a cached row and a remote session with its id are one session: an id that
    comes back with another create time or prompt names another session."""
    if current.create_time and remote.create_time and current.create_time != remote.create_time:
        return False
    prompt = remote.prompt or ""
    return not (current.prompt and prompt and current.prompt != prompt)


def tombstone_id(remote_id: str, n: int) -> str:
    """The remote id an earlier holder of `remote_id` keeps, unique by `n`, within the
    column's length (`~` never occurs in a real id)."""
    suffix = f"{TOMBSTONE}{n}"
    return remote_id[: SESSION_ID_LENGTH - len(suffix)] + suffix


def repo_label(source_name: str, known: dict[str, str] | None = None) -> str:
    if not source_name:
        return ""
    if known and source_name in known:
        return known[source_name]
    rest = source_name.removeprefix("sources/")
    if rest.startswith("github/"):
        return rest.removeprefix("github/")
    return rest


def next_poll_for(
    state: str, update_time: dt.datetime | None, now: dt.datetime
) -> dt.datetime | None:
    """When a session is due to be re-read on its own, following its state."""
    if state in BUSY_STATES or state in ATTENTION_STATES or state == SessionState.STATE_UNSPECIFIED:
        return now + dt.timedelta(seconds=settings.SYNC_ACTIVE_SECONDS)
    if state == SessionState.PAUSED:
        return now + dt.timedelta(seconds=settings.SYNC_IDLE_SECONDS)
    # COMPLETED and FAILED rest, but COMPLETED sessions revive: re-read them slowly for a
    # while; after that only the periodic full pass looks at them.
    if update_time is not None and now - update_time < REVIVAL_WINDOW:
        return now + dt.timedelta(seconds=settings.SYNC_IDLE_SECONDS)
    return None


def session_values(
    remote: jr.Session, now: dt.datetime, repos: dict[str, str] | None = None
) -> dict[str, Any]:
    state = remote.state if remote.state in KNOWN_STATES else SessionState.STATE_UNSPECIFIED
    pr_url = next((o.pull_request.url for o in remote.outputs if o.pull_request), "")
    return {
        "name": (remote.name or f"sessions/{remote.id}")[:80],
        "prompt": remote.prompt or "",
        "title": (remote.title or "")[:500],
        "state": state,
        "state_raw": str(remote.raw.get("state", ""))[:64],
        "source_name": (remote.source or "")[:300],
        "repo": repo_label(remote.source or "", repos)[:300],
        "starting_branch": (remote.starting_branch or "")[:250],
        "working_branch": (remote.working_branch or "")[:250],
        "environment_variables_enabled": bool(remote.environment_variables_enabled),
        "require_plan_approval": remote.require_plan_approval,
        "automation_mode": (remote.automation_mode or "")[:40],
        "create_time": remote.create_time,
        "update_time": remote.update_time,
        "url": (remote.url or "")[:300],
        "archived": bool(remote.archived),
        "pr_url": (pr_url or "")[:500],
        "raw": remote.raw,
        "next_poll_at": next_poll_for(state, remote.update_time, now),
        "synced_at": now,
        "deleted_remotely": False,
    }


def output_rows(session: Session, remote: jr.Session) -> list[SessionOutput]:
    rows = []
    for position, output in enumerate(remote.outputs):
        row = SessionOutput(session=session, position=position, raw=output.raw)
        if output.pull_request is not None:
            pr = output.pull_request
            row.kind = SessionOutput.Kind.PULL_REQUEST
            row.url = (pr.url or "")[:500]
            row.title = (pr.title or "")[:500]
            row.description = pr.description or ""
            row.base_ref = (pr.base_ref or "")[:250]
            row.head_ref = (pr.head_ref or "")[:250]
        elif output.change_set is not None:
            cs = output.change_set
            row.kind = SessionOutput.Kind.CHANGE_SET
            row.source = (cs.source or "")[:300]
            row.patch = cs.unidiff_patch or ""
            row.base_commit_id = (cs.base_commit_id or "")[:64]
            row.suggested_commit_message = cs.suggested_commit_message or ""
        else:
            row.kind = SessionOutput.Kind.UNKNOWN
        rows.append(row)
    return rows


def artifact_dicts(artifacts: Sequence[jr.Artifact]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for artifact in artifacts:
        if artifact.change_set is not None:
            cs = artifact.change_set
            out.append(
                {
                    "kind": "changeSet",
                    "source": cs.source or "",
                    "patch": cs.unidiff_patch or "",
                    "base_commit_id": cs.base_commit_id or "",
                    "suggested_commit_message": cs.suggested_commit_message or "",
                }
            )
        elif artifact.media is not None:
            out.append(
                {
                    "kind": "media",
                    "mime_type": artifact.media.mime_type or "",
                    "data": artifact.media.data or "",
                }
            )
        elif artifact.bash_output is not None:
            bo = artifact.bash_output
            out.append(
                {
                    "kind": "bashOutput",
                    "command": bo.command or "",
                    "output": bo.output or "",
                    "exit_code": bo.exit_code or 0,
                }
            )
        else:
            out.append({"kind": "unknown", "raw": artifact.raw})
    return out


# The columns `activity_values` fills, in its order (the model's attnames), and the
# positions of the JSON ones among them.
ACTIVITY_FIELDS = (
    "session_id",
    "remote_id",
    "name",
    "kind",
    "originator",
    "description",
    "create_time",
    "create_time_raw",
    "message",
    "plan_id",
    "plan_steps",
    "progress_title",
    "progress_description",
    "failure_reason",
    "artifacts",
    "raw",
)
ACTIVITY_JSON_POSITIONS = (10, 14, 15)


def activity_values(session_id: int, remote: jr.Activity) -> tuple[Any, ...]:
    """One activity's row as a tuple in `ACTIVITY_FIELDS` order (the sync's hot path)."""
    plan = remote.plan
    return (
        session_id,
        remote.id[:64],
        (remote.name or "")[:200],
        remote.kind[:32],
        (remote.originator or "system")[:32],
        remote.description or "",
        remote.create_time,
        (remote.create_time_raw or "")[:40],
        remote.agent_message or remote.user_message or "",
        ((plan.id if plan else remote.approved_plan_id) or "")[:64],
        (
            [
                {"id": s.id, "title": s.title, "description": s.description, "index": s.index}
                for s in plan.steps
            ]
            if plan
            else []
        ),
        remote.progress_title or "",
        remote.progress_description or "",
        remote.failure_reason or "",
        artifact_dicts(remote.artifacts) if remote.artifacts else [],
        remote.raw,
    )


def activity_row(session_id: int, remote: jr.Activity) -> Activity:
    return Activity(**dict(zip(ACTIVITY_FIELDS, activity_values(session_id, remote), strict=True)))


# Activity kinds that record a transition, and the transition each records.
ACTIVITY_TRANSITIONS: dict[str, str] = {
    ActivityKind.PLAN_GENERATED: SessionTransition.Kind.PLAN_GENERATED,
    ActivityKind.PLAN_APPROVED: SessionTransition.Kind.PLAN_APPROVED,
    ActivityKind.SESSION_FAILED: SessionTransition.Kind.FAILED,
}
TRANSITION_ACTIVITY_KINDS = tuple(ACTIVITY_TRANSITIONS)


def activity_transition(
    connection: JulesConnection, session: Session, remote: jr.Activity, now: dt.datetime
) -> SessionTransition | None:
    kind = ACTIVITY_TRANSITIONS.get(remote.kind)
    if kind is None:
        return None
    details: dict[str, Any] = {"activity_id": remote.id}
    if remote.plan is not None:
        details["plan_id"] = remote.plan.id
        details["steps"] = len(remote.plan.steps)
    if remote.approved_plan_id:
        details["plan_id"] = remote.approved_plan_id
        details["originator"] = remote.originator
    if remote.failure_reason:
        details["reason"] = remote.failure_reason[:500]
    return SessionTransition(
        team_id=connection.team_id,
        session=session,
        kind=kind,
        to_state=session.state,
        details=details,
        observed_at=now,
    )
