"""Delivering outbox actions to the Jules API, at most once per user intent.

`deliver` claims a row by conditional update, so two workers (or a task and the sweep)
never send the same action twice. Retryable failures go back to pending with backoff and
the reason in words; permanent ones end as failed with the reason. Launch and message are
not idempotent on the service: when a previous attempt's outcome is unknown (it was sent
but no answer came), the service is asked first whether it took effect (spec §9).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from typing import Any

from django.db.models import F, Q
from django.utils import timezone

from sessions_app import sync
from sessions_app.jules import errors as jerrors
from sessions_app.jules.client import JulesClient
from sessions_app.models import OutboxAction, Session

logger = logging.getLogger(__name__)

CLAIM_SECONDS = 120
MAX_ATTEMPTS = 12


def _claim(action_id: str) -> bool:
    now = timezone.now()
    return (
        OutboxAction.objects.filter(
            pk=action_id, status=OutboxAction.Status.PENDING, next_attempt_at__lte=now
        ).update(
            status=OutboxAction.Status.SENDING,
            claimed_until=now + dt.timedelta(seconds=CLAIM_SECONDS),
            attempts=F("attempts") + 1,
        )
        == 1
    )


def deliver(action_id: str) -> str:
    """Deliver one action; returns its status afterwards."""
    if not _claim(action_id):
        return (
            OutboxAction.objects.filter(pk=action_id).values_list("status", flat=True).first()
            or "missing"
        )
    action = OutboxAction.objects.select_related("connection", "session", "actor").get(pk=action_id)
    try:
        client = sync.make_client(action.connection)
        result = _perform(client, action)
    except sync.ConnectionUnusable as exc:
        return _fail(action, str(exc))
    except jerrors.JulesError as exc:
        if exc.retryable and action.attempts < MAX_ATTEMPTS:
            return _retry_later(action, exc)
        return _fail(action, _reason(exc))
    OutboxAction.objects.filter(pk=action.pk).update(
        status=OutboxAction.Status.DONE,
        delivered_at=timezone.now(),
        claimed_until=None,
        last_error="",
        result=result,
        session=action.session,
    )
    if action.session is not None and action.kind != OutboxAction.Kind.DELETE:
        _refresh(action.session.pk)
    return OutboxAction.Status.DONE


def _perform(client: JulesClient, action: OutboxAction) -> dict[str, Any]:
    kind = action.kind
    payload = action.payload
    session = action.session
    if kind == OutboxAction.Kind.LAUNCH:
        if action.attempts > 1:
            found = _find_launched(client, action)
            if found is not None:
                return found
        remote = client.create_session(
            prompt=payload["prompt"],
            source=payload.get("source") or None,
            starting_branch=payload.get("starting_branch") or None,
            title=payload.get("title") or None,
            require_plan_approval=payload.get("require_plan_approval"),
            automation_mode=payload.get("automation_mode") or None,
        )
        cached = sync.upsert_remote_session(action.connection, remote, launched_by=action.actor)
        action.session = cached
        return {"remote_id": remote.id}
    if session is None:
        raise jerrors.NotFoundError("The session is no longer in the portal.")
    if kind == OutboxAction.Kind.APPROVE:
        client.approve_plan(session.remote_id)
    elif kind == OutboxAction.Kind.MESSAGE:
        if action.attempts > 1 and _message_arrived(client, session, action):
            return {"matched": True}
        client.send_message(session.remote_id, payload["prompt"])
    elif kind == OutboxAction.Kind.ARCHIVE:
        client.archive_session(session.remote_id)
    elif kind == OutboxAction.Kind.UNARCHIVE:
        client.unarchive_session(session.remote_id)
    elif kind == OutboxAction.Kind.DELETE:
        # Already gone on Jules means the intent holds.
        with contextlib.suppress(jerrors.NotFoundError):
            client.delete_session(session.remote_id)
        Session.objects.filter(pk=session.pk).update(deleted_remotely=True, next_poll_at=None)
    return {}


def _find_launched(client: JulesClient, action: OutboxAction) -> dict[str, Any] | None:
    """After an ambiguous attempt, look for the session it may have created."""
    for remote in client.iter_sessions(page_size=30):
        if remote.create_time is not None and remote.create_time < action.created_at - dt.timedelta(
            minutes=1
        ):
            break
        if remote.prompt == action.payload.get("prompt"):
            action.session = sync.upsert_remote_session(
                action.connection, remote, launched_by=action.actor
            )
            return {"remote_id": remote.id, "matched": True}
    return None


def _message_arrived(client: JulesClient, session: Session, action: OutboxAction) -> bool:
    pivot = (action.created_at - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return any(
        a.kind == "userMessaged" and a.user_message == action.payload.get("prompt")
        for a in client.iter_activities(session.remote_id, create_time_after=pivot)
    )


def _refresh(session_id: int) -> None:
    from sessions_app import tasks

    try:
        tasks.sync_session.delay(session_id)
    except Exception:  # A dead broker only delays the refresh; the schedule catches up.
        logger.warning("Could not enqueue a refresh of session %s", session_id)


def _reason(exc: jerrors.JulesError) -> str:
    if isinstance(exc, jerrors.FailedPreconditionError):
        return f"Jules refused: {exc.message}"
    if isinstance(exc, jerrors.NotFoundError):
        return "Jules no longer knows this session (deleted?)."
    if isinstance(exc, jerrors.InvalidArgumentError):
        return f"Jules rejected the request: {exc.message}"
    return sync.describe_error(exc)


def _retry_later(action: OutboxAction, exc: jerrors.JulesError) -> str:
    wait = min(600, 5 * 2 ** max(0, action.attempts - 1))
    if exc.retry_after:
        wait = max(wait, int(exc.retry_after))
    OutboxAction.objects.filter(pk=action.pk).update(
        status=OutboxAction.Status.PENDING,
        next_attempt_at=timezone.now() + dt.timedelta(seconds=wait),
        claimed_until=None,
        last_error=f"{_reason(exc)} Next try in {wait} s.",
    )
    return OutboxAction.Status.PENDING


def _fail(action: OutboxAction, reason: str) -> str:
    OutboxAction.objects.filter(pk=action.pk).update(
        status=OutboxAction.Status.FAILED, claimed_until=None, last_error=reason
    )
    return OutboxAction.Status.FAILED


def sweep(now: dt.datetime | None = None) -> int:
    """Re-enqueue due pending actions and reclaim those whose sender died mid-way."""
    from sessions_app import tasks

    now = now or timezone.now()
    # A sender that died left the row in `sending`; its outcome is unknown, so it goes
    # back to pending and the next attempt checks whether it took effect first.
    OutboxAction.objects.filter(status=OutboxAction.Status.SENDING, claimed_until__lt=now).update(
        status=OutboxAction.Status.PENDING, claimed_until=None
    )
    due = list(
        OutboxAction.objects.filter(Q(status=OutboxAction.Status.PENDING), next_attempt_at__lte=now)
        .order_by("created_at")
        .values_list("pk", flat=True)[:500]
    )
    for action_id in due:
        tasks.deliver_action.delay(str(action_id))
    return len(due)
