"""Events derived from what the sync records (docs/notifications.md, "Event kinds").

The sync calls `events_for_transitions` where it inserts transitions, and
`events_for_discovered` for sessions whose discovery PostgreSQL records in SQL; both run in
the sync's transaction. Each event's `key` names the underlying change (a session's
update time, an activity id), and rows are inserted ignoring conflicts, so a re-sync or a
second worker that sees the same change adds nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from sessions_app.models import (
    Event,
    EventKind,
    JulesConnection,
    OutboxAction,
    Session,
    SessionState,
    SessionTransition,
    TeamNotificationSettings,
)

STATE_EVENTS = {
    SessionState.AWAITING_PLAN_APPROVAL: EventKind.PLAN_AWAITING,
    SessionState.AWAITING_USER_FEEDBACK: EventKind.FEEDBACK_AWAITING,
    SessionState.COMPLETED: EventKind.COMPLETED,
    SessionState.PAUSED: EventKind.PAUSED,
}
# A session first seen in these states still waits for someone; others are history.
DISCOVERED_EVENTS = {SessionState.AWAITING_PLAN_APPROVAL, SessionState.AWAITING_USER_FEEDBACK}
# A portal launch may be listed by the sync before the outbox writes its session.
LAUNCH_MATCH_WINDOW = dt.timedelta(hours=1)

WORDS = {
    EventKind.PLAN_AWAITING: "A plan is waiting for approval",
    EventKind.APPROVAL_OVERDUE: "A plan has waited longer than the team's target",
    EventKind.APPROVED_OUTSIDE: "A plan was approved in Jules, not through the portal",
    EventKind.FEEDBACK_AWAITING: "The agent asks a question",
    EventKind.COMPLETED: "The session completed",
    EventKind.FAILED: "The session failed",
    EventKind.PAUSED: "The session is paused",
    EventKind.STALLED: "The session shows no progress",
    EventKind.LAUNCHED_OUTSIDE: "A session was launched outside the portal",
    EventKind.CONNECTION_BROKEN: "Jules refused a connection's key",
    EventKind.ENDPOINT_DISABLED: "A team channel kept failing and was disabled",
}


def _iso(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).isoformat() if value else ""


def session_link(session: Session, kind: str) -> str:
    url = reverse("sessions_app:session-detail", args=[session.pk])
    if kind in {EventKind.PLAN_AWAITING, EventKind.APPROVAL_OVERDUE}:
        return f"{url}#plan-heading"
    return url


def session_payload(session: Session) -> dict[str, Any]:
    return {
        "id": session.pk,
        "remote_id": session.remote_id,
        "title": session.display_title,
        "state": session.state,
        "repo": session.repo,
        "jules_url": session.url,
        "pr_url": session.pr_url,
    }


def session_event(
    session: Session,
    kind: str,
    key: str,
    *,
    body: str = "",
    details: dict[str, Any] | None = None,
    occurred_at: dt.datetime | None = None,
) -> Event:
    """An unsaved event about a session, with its words and payload."""
    now = timezone.now()
    return Event(
        key=f"{kind}:{key}"[:200],
        kind=kind,
        team_id=session.team_id,
        session_id=session.pk,
        connection_id=session.connection_id,
        concerns_id=session.launched_by_id,
        title=f"{WORDS[EventKind(kind)]}: {session.display_title}"[:300],
        body=body,
        link=session_link(session, kind),
        payload={"session": session_payload(session), **(details or {})},
        occurred_at=occurred_at or now,
        created_at=now,
    )


def _from_transition(t: SessionTransition, connections: dict[int, JulesConnection]) -> Event | None:
    session = t.session
    stamp = _iso(session.update_time) or _iso(t.observed_at)
    if t.kind == SessionTransition.Kind.STATE_CHANGED and t.to_state in STATE_EVENTS:
        kind = STATE_EVENTS[SessionState(t.to_state)]
        body = ""
        if kind == EventKind.COMPLETED and session.pr_url:
            body = f"Pull request: {session.pr_url}"
        return session_event(
            session,
            kind,
            f"{session.pk}:{t.to_state}:{stamp}",
            body=body,
            details={"from_state": t.from_state},
            occurred_at=t.observed_at,
        )
    if t.kind == SessionTransition.Kind.FAILED:
        reason = str(t.details.get("reason", ""))
        return session_event(
            session,
            EventKind.FAILED,
            f"{session.pk}:{t.details.get('activity_id', stamp)}",
            body=f"Reason: {reason}" if reason else "",
            details={"reason": reason},
            occurred_at=t.observed_at,
        )
    if t.kind == SessionTransition.Kind.PLAN_APPROVED:
        plan_id = str(t.details.get("plan_id", ""))
        if session.require_plan_approval is False or _approved_in_portal(session, plan_id):
            return None
        return session_event(
            session,
            EventKind.APPROVED_OUTSIDE,
            f"{session.pk}:{t.details.get('activity_id', plan_id)}",
            body="The team's approval gate was bypassed in Jules itself.",
            details={"plan_id": plan_id},
            occurred_at=t.observed_at,
        )
    if t.kind == SessionTransition.Kind.DISCOVERED:
        return _discovered(session, connections.get(session.connection_id))
    return None


def _discovered(session: Session, connection: JulesConnection | None) -> Event | None:
    if session.state in DISCOVERED_EVENTS:
        kind = STATE_EVENTS[SessionState(session.state)]
        return session_event(
            session, kind, f"{session.pk}:{session.state}:{_iso(session.update_time)}"
        )
    if connection is None or session.launched_by_id is not None:
        return None
    # The first sync of an account discovers its whole history: only sessions created
    # since the connection was added were launched "behind the portal's back".
    if session.create_time is None or session.create_time < connection.created_at:
        return None
    if _launched_from_portal(session):
        return None
    return session_event(session, EventKind.LAUNCHED_OUTSIDE, str(session.pk))


def _approved_in_portal(session: Session, plan_id: str) -> bool:
    approvals = OutboxAction.objects.filter(
        session_id=session.pk, kind=OutboxAction.Kind.APPROVE
    ).exclude(status=OutboxAction.Status.FAILED)
    if plan_id:
        approvals = approvals.filter(payload__plan_id__in=[plan_id, ""])
    return approvals.exists()


def _launched_from_portal(session: Session) -> bool:
    return (
        OutboxAction.objects.filter(
            connection_id=session.connection_id,
            kind=OutboxAction.Kind.LAUNCH,
            payload__prompt=session.prompt,
            created_at__gte=timezone.now() - LAUNCH_MATCH_WINDOW,
        )
        .exclude(status=OutboxAction.Status.FAILED)
        .exists()
    )


def record(events: Iterable[Event]) -> int:
    """Insert events, skipping any whose key exists; fan-out follows the commit."""
    rows = [e for e in events if e is not None]
    if not rows:
        return 0
    Event.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    from sessions_app import tasks
    from sessions_app.outbox.services import after_commit

    after_commit(tasks.fan_out_events)
    return len(rows)


def events_for_transitions(transitions: Sequence[SessionTransition]) -> int:
    """The sync's hook: the events the transitions of one write imply."""
    if not transitions:
        return 0
    connection_ids = {t.session.connection_id for t in transitions}
    connections = {c.pk: c for c in JulesConnection.objects.filter(pk__in=connection_ids)}
    return record(
        event for t in transitions if (event := _from_transition(t, connections)) is not None
    )


def events_for_discovered(sessions: Sequence[Session]) -> int:
    """The sync's hook for sessions inserted with their DISCOVERED transition in SQL."""
    if not sessions:
        return 0
    connections = {
        c.pk: c for c in JulesConnection.objects.filter(pk__in={s.connection_id for s in sessions})
    }
    return record(
        event
        for s in sessions
        if (event := _discovered(s, connections.get(s.connection_id))) is not None
    )


def connection_broken(connection_id: int, reason: str) -> int:
    """The sync's hook when Jules refuses a connection's key: one event per episode."""
    connection = JulesConnection.objects.filter(pk=connection_id).first()
    if connection is None:
        return 0
    # One episode lasts from the last success (or key rotation) to the next.
    since = max(
        (d for d in (connection.last_success_at, connection.key_rotated_at) if d),
        default=connection.created_at,
    )
    event = Event(
        key=f"{EventKind.CONNECTION_BROKEN}:{connection.pk}:{_iso(since)}",
        kind=EventKind.CONNECTION_BROKEN,
        team_id=connection.team_id,
        connection_id=connection.pk,
        title=f"{WORDS[EventKind.CONNECTION_BROKEN]}: {connection.label}"[:300],
        body=reason[:1000],
        link=reverse("sessions_app:connection-detail", args=[connection.pk]),
        payload={"connection": {"id": connection.pk, "label": connection.label}, "reason": reason},
    )
    with transaction.atomic():
        return record([event])


# --- the periodic scan: stalls and overdue approvals --------------------------------------


def _entered(session: Session) -> dt.datetime | None:
    """When the session entered its current state, as the sync saw it."""
    seen = (
        SessionTransition.objects.filter(session=session, to_state=session.state)
        .order_by("-observed_at")
        .values_list("observed_at", flat=True)
        .first()
    )
    return seen or session.update_time


def scan_waiting(now: dt.datetime | None = None) -> int:
    """Record stalled sessions and overdue approvals (with their reminders)."""
    now = now or timezone.now()
    settings_by_team = {s.team_id: s for s in TeamNotificationSettings.objects.all()}
    default = TeamNotificationSettings()
    events: list[Event] = []
    waiting = Session.objects.filter(
        state=SessionState.AWAITING_PLAN_APPROVAL, deleted_remotely=False
    )
    for session in waiting:
        team_settings = settings_by_team.get(session.team_id, default)
        entered = _entered(session)
        if entered is None:
            continue
        waited = now - entered
        target = dt.timedelta(minutes=team_settings.approval_target_minutes)
        if waited < target:
            continue
        # The first escalation at the target, then one reminder per interval at most.
        interval = dt.timedelta(minutes=max(1, team_settings.reminder_minutes))
        reminder = int((waited - target) / interval)
        minutes = int(waited.total_seconds() // 60)
        events.append(
            session_event(
                session,
                EventKind.APPROVAL_OVERDUE,
                f"{session.pk}:{_iso(entered)}:{reminder}",
                body=f"Waiting for {minutes} minutes (the team's target is "
                f"{team_settings.approval_target_minutes}).",
                details={"waiting_minutes": minutes, "reminder": reminder},
            )
        )
    busy = Session.objects.filter(state=SessionState.IN_PROGRESS, deleted_remotely=False)
    for session in busy:
        team_settings = settings_by_team.get(session.team_id, default)
        last = session.last_activity_at or _entered(session)
        if last is None or now - last < dt.timedelta(minutes=team_settings.stalled_after_minutes):
            continue
        events.append(
            session_event(
                session,
                EventKind.STALLED,
                f"{session.pk}:{_iso(last)}",
                body=f"No new activity since {last:%Y-%m-%d %H:%M} UTC.",
                details={"last_activity_at": _iso(last)},
            )
        )
    with transaction.atomic():
        return record(events)
