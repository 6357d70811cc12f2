"""Delivering outbox actions to the Jules API, at most once per user intent.

`deliver` claims a row by conditional update, so two workers (or a task and the sweep)
never send the same action twice. Retryable failures go back to pending with exponential
backoff and the reason in words; permanent ones end as failed with the reason. Launch and
message are not idempotent on the service: when an earlier attempt may have taken effect
(it was sent, but no answer came, or its worker died), the service is asked first whether
it did, and a match counts as done. Approve, archive and unarchive are checked
the same way (the plan's `planApproved` activity, the session's `archived` flag), so that
each action reaches Jules once: a resent approvePlan would otherwise meet a refusal, and a
resent archive would count twice.

The client used here resends a write only when the first attempt surely did not take
effect (a 429, a 503, a refused connection); after any other failure the action goes back
to pending, and the next attempt checks before it sends. A retry is enqueued with the
backoff as its countdown; the periodic sweep catches any that a dead broker or worker lost.
Why: docs/jules-api.md#non-idempotent-calls and docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
from typing import Any

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from jules import errors as jerrors
from jules import resources
from jules.client import JulesClient
from sessions_app import tasks
from sessions_app.analytics.rollup import refresh_facts
from sessions_app.connections.client import (
    ConnectionUnusable,
    describe_action_error,
    outbox_client,
)
from sessions_app.launch_queue import gate
from sessions_app.models import OutboxAction, Session, SessionTransition
from sessions_app.models.jules import ActivityKind
from sessions_app.outbox import requeue
from sessions_app.sync.writers import upsert_remote_session

logger = logging.getLogger(__name__)

# Longer than the delivery task's hard time limit (120 s), so a claim outlives its worker
# only when that worker died; the sweep then hands the action to another one.
CLAIM_SECONDS = 180
MAX_ATTEMPTS = 12
BACKOFF_CAP_SECONDS = 600
# A longer Retry-After than this is honoured only up to it: any larger value (a year, or
# 1e300, which no date can hold) would crash the delivery or park the action for good.
RETRY_AFTER_CAP_SECONDS = 3600
# The portal's clock and Jules' may disagree a little; matching an ambiguous launch or
# message looks this far before the action was created.
CLOCK_SKEW = dt.timedelta(minutes=2)

Status = OutboxAction.Status
Kind = OutboxAction.Kind


def _claim(action_id: str) -> bool:
    now = timezone.now()
    return (
        OutboxAction.objects.filter(
            pk=action_id, status=Status.PENDING, next_attempt_at__lte=now
        ).update(
            status=Status.SENDING,
            claimed_until=now + dt.timedelta(seconds=CLAIM_SECONDS),
            attempts=F("attempts") + 1,
            # The task that held the row is this one: whatever comes next publishes anew
            # or leaves the row to the sweep (outbox/requeue.py).
            enqueued_at=None,
            updated_at=now,
        )
        == 1
    )


def deliver(action_id: str) -> str:
    """Deliver one action if it is due and nobody else holds it; return its status after."""
    if not _claim(action_id):
        status = OutboxAction.objects.filter(pk=action_id).values_list("status", flat=True)
        return status.first() or "missing"
    action = OutboxAction.objects.select_related("connection", "session", "actor").get(pk=action_id)
    earlier = _open_before(action)
    if earlier is not None:
        return _wait_behind(action, earlier)
    if action.kind == Kind.LAUNCH:
        # The launch queue decides when and where a launch starts: docs/launch-queue.md
        verdict = gate.admit(action)
        if not verdict.admitted:
            return _wait_in_queue(action, verdict)
        if verdict.connection is not None:
            action.connection = verdict.connection
    if not action.connection.enabled:
        return _fail(action, "The connection was disabled before this could be sent to Jules.")
    try:
        with outbox_client(action.connection) as client:
            result = _perform(client, action)
    except ConnectionUnusable as exc:
        return _fail(action, str(exc))
    except jerrors.JulesError as exc:
        if action.kind == Kind.LAUNCH and _refusal(exc, action.attempts):
            reason = describe_action_error(exc)
            gate.refused(action, exc, reason)
            return _retry_later(action, reason, exc.retry_after)
        if exc.retryable and action.attempts < MAX_ATTEMPTS:
            return _retry_later(action, describe_action_error(exc), exc.retry_after)
        return _fail(action, describe_action_error(exc))
    except Exception:
        # A bug or a database hiccup: the outcome is unknown, so the next attempt checks
        # with Jules first, like after a timeout. The traceback goes to the worker log.
        logger.exception("Delivering outbox action %s failed unexpectedly", action.pk)
        reason = "The portal hit an unexpected error while sending this (see the worker log)."
        if action.attempts < MAX_ATTEMPTS:
            return _retry_later(action, reason, None)
        return _fail(action, reason)
    OutboxAction.objects.filter(pk=action.pk).update(
        status=Status.DONE,
        delivered_at=timezone.now(),
        claimed_until=None,
        last_error="",
        result=result,
        session=action.session,
        updated_at=timezone.now(),
    )
    if action.kind == Kind.LAUNCH:
        gate.started(action)
    if action.session is not None and action.kind in {
        Kind.APPROVE,
        Kind.MESSAGE,
        Kind.ARCHIVE,
        Kind.UNARCHIVE,
    }:
        _refresh(action.session.pk)
    return Status.DONE


def _open_before(action: OutboxAction) -> OutboxAction | None:
    """The oldest action on the same session that is still on its way, if any.

    A session's actions reach Jules in the order people took them: an archive and its
    undo, or an approval and the message after it, must not swap places when the first
    one meets a fault and waits for its retry.
    """
    if action.session_id is None:
        return None
    return (
        OutboxAction.objects.filter(
            session_id=action.session_id,
            status__in=[Status.PENDING, Status.SENDING],
            created_at__lt=action.created_at,
        )
        .order_by("created_at")
        .first()
    )


def _wait_behind(action: OutboxAction, earlier: OutboxAction) -> str:
    """Back to pending until the earlier action is through; this costs no attempt."""
    now = timezone.now()
    due = max(earlier.next_attempt_at, now) + dt.timedelta(seconds=1)
    OutboxAction.objects.filter(pk=action.pk).update(
        status=Status.PENDING,
        attempts=F("attempts") - 1,
        claimed_until=None,
        next_attempt_at=due,
        last_error=(
            f"Waiting for the earlier {earlier.get_kind_display().lower()} of this session "
            "to reach Jules first."
        ),
        updated_at=now,
    )
    _enqueue_retry(str(action.pk), (due - now).total_seconds())
    return Status.PENDING


def _wait_in_queue(action: OutboxAction, verdict: gate.Verdict) -> str:
    """Back to pending until the account has room; waiting costs no attempt."""
    if verdict.reason in {gate.Status.CANCELLED, gate.Status.FAILED, gate.Status.STARTED}:
        return _fail(action, "This launch was taken out of the queue.")
    now = timezone.now()
    due = now + dt.timedelta(seconds=verdict.retry_in)
    OutboxAction.objects.filter(pk=action.pk, status=Status.SENDING).update(
        status=Status.PENDING,
        attempts=F("attempts") - 1,
        claimed_until=None,
        next_attempt_at=due,
        last_error=f"Queued: {verdict.detail}",
        updated_at=now,
    )
    _enqueue_retry(str(action.pk), verdict.retry_in)
    return Status.PENDING


def _refusal(exc: jerrors.JulesError, attempts: int) -> bool:
    """A create Jules refused for now: a quota (429), or the misleading 404 "Could not get
    source." that parallel creates meet (docs/jules-api.md#parallel-creates). Both go back
    to the queue and are retried with backoff; a wrong repository fails after the attempts."""
    if isinstance(exc, jerrors.RateLimitedError):
        return attempts < MAX_ATTEMPTS
    return (
        isinstance(exc, jerrors.NotFoundError)
        and "could not get source" in exc.message.lower()
        and attempts < SOURCE_404_ATTEMPTS
    )


# A wrong repository answers the same 404 as a parallel create: retried this often only.
SOURCE_404_ATTEMPTS = 3


def _perform(client: JulesClient, action: OutboxAction) -> dict[str, Any]:
    """Make the call; return what to keep as the action's result."""
    payload = action.payload
    maybe_sent_before = action.attempts > 1
    if action.kind == Kind.LAUNCH:
        if maybe_sent_before:
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
        action.session = upsert_remote_session(action.connection, remote, launched_by=action.actor)
        return {"remote_id": remote.id}
    session = action.session
    if session is None:
        raise jerrors.NotFoundError("The session is no longer in the portal.")
    if action.kind == Kind.APPROVE:
        plan_id = payload.get("plan_id", "")
        if maybe_sent_before and _plan_approved(client, session, action):
            return {"plan_id": plan_id, "matched": True}
        client.approve_plan(session.remote_id)
        return {"plan_id": plan_id}
    if action.kind == Kind.MESSAGE:
        if maybe_sent_before and _message_arrived(client, session, action):
            return {"matched": True}
        client.send_message(session.remote_id, payload["prompt"])
        return {}
    if action.kind in {Kind.ARCHIVE, Kind.UNARCHIVE}:
        archive = action.kind == Kind.ARCHIVE
        if maybe_sent_before and client.get_session(session.remote_id).archived == archive:
            return {"matched": True}
        if archive:
            client.archive_session(session.remote_id)
        else:
            client.unarchive_session(session.remote_id)
        return {}
    if action.kind == Kind.DELETE:
        # Already gone on Jules means the intent holds.
        with contextlib.suppress(jerrors.NotFoundError):
            client.delete_session(session.remote_id)
        if Session.objects.filter(pk=session.pk, deleted_remotely=False).update(
            deleted_remotely=True, next_poll_at=None
        ):
            # As the sync does: the list's counts are keyed by the newest transition.
            SessionTransition.objects.create(
                team_id=session.team_id,
                session=session,
                kind=SessionTransition.Kind.DELETED,
                from_state=session.state,
            )
            refresh_facts([session.pk])
        return {}
    raise jerrors.InvalidArgumentError(f"The portal cannot deliver a {action.kind!r} action.")


def _find_launched(client: JulesClient, action: OutboxAction) -> dict[str, Any] | None:
    """After an ambiguous attempt, look for the session that attempt may have created.

    sessions.list is newest first, so the scan stops at the first session older than the
    action. A session another launch already took is never matched twice, so that two
    launches of the same prompt stay two sessions.
    """
    since = action.created_at - CLOCK_SKEW
    taken = {
        str(remote_id)
        for remote_id in OutboxAction.objects.filter(
            connection=action.connection, kind=Kind.LAUNCH, status=Status.DONE
        )
        .exclude(pk=action.pk)
        .values_list("result__remote_id", flat=True)
        if remote_id
    }
    for remote in client.iter_sessions(page_size=30):
        if remote.create_time is not None and remote.create_time < since:
            break
        if remote.prompt == action.payload.get("prompt") and remote.id not in taken:
            action.session = upsert_remote_session(
                action.connection, remote, launched_by=action.actor
            )
            return {"remote_id": remote.id, "matched": True}
    return None


def _message_arrived(client: JulesClient, session: Session, action: OutboxAction) -> bool:
    """After an ambiguous attempt, whether Jules recorded this message already.

    Counts the session's `userMessaged` activities with the same text since the action was
    created, less those that other delivered actions with the same text account for.
    """
    prompt = action.payload.get("prompt")
    since = action.created_at - CLOCK_SKEW
    pivot = since.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    seen = sum(
        1
        for activity in client.iter_activities(session.remote_id, create_time_after=pivot)
        if activity.kind == ActivityKind.USER_MESSAGED and activity.user_message == prompt
    )
    accounted = (
        OutboxAction.objects.filter(
            session=session,
            kind=Kind.MESSAGE,
            status=Status.DONE,
            payload__prompt=prompt,
            delivered_at__gte=since,
        )
        .exclude(pk=action.pk)
        .count()
    )
    return seen > accounted


def _plan_approved(client: JulesClient, session: Session, action: OutboxAction) -> bool:
    """After an ambiguous attempt, whether Jules recorded the approval already.

    Looks for a `planApproved` activity since the action was created (of the approved plan,
    when the action names one); the session's state alone cannot tell an approval from
    work that was never waiting for one.
    """
    plan_id = action.payload.get("plan_id") or ""
    since = action.created_at - CLOCK_SKEW
    pivot = since.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return any(
        activity.kind == resources.PLAN_APPROVED
        and (not plan_id or not activity.approved_plan_id or activity.approved_plan_id == plan_id)
        for activity in client.iter_activities(session.remote_id, create_time_after=pivot)
    )


def _refresh(session_id: int) -> None:
    """Re-read the session now, so that its page shows the effect of the action."""
    try:
        tasks.sync_session.delay(session_id)
    except Exception:  # A dead broker only delays the refresh; the schedule catches up.
        logger.warning("Could not enqueue a refresh of session %s", session_id)


def backoff_seconds(attempts: int, retry_after: float | None = None) -> int:
    """Exponential: `OUTBOX_BACKOFF_SECONDS` (5 s) after the first attempt, doubling, at
    most ten minutes."""
    base = max(1, settings.OUTBOX_BACKOFF_SECONDS)
    wait = min(BACKOFF_CAP_SECONDS, base * 2 ** max(0, attempts - 1))
    if retry_after and math.isfinite(retry_after):
        # Jules' Retry-After is a floor, never a reason to wait less.
        wait = max(wait, math.ceil(min(retry_after, RETRY_AFTER_CAP_SECONDS)))
    return wait


def _retry_later(action: OutboxAction, reason: str, retry_after: float | None) -> str:
    wait = backoff_seconds(action.attempts, retry_after)
    now = timezone.now()
    due = (now + dt.timedelta(seconds=wait)).astimezone(dt.UTC)
    OutboxAction.objects.filter(pk=action.pk).update(
        status=Status.PENDING,
        next_attempt_at=due,
        claimed_until=None,
        last_error=(
            f"{reason} Attempt {action.attempts} of {MAX_ATTEMPTS}; next try in {wait} s, "
            f"at {due:%H:%M:%S} UTC."
        ),
        updated_at=now,
    )
    _enqueue_retry(str(action.pk), wait)
    return Status.PENDING


def _enqueue_retry(action_id: str, wait: float) -> None:
    """Deliver again once the backoff has passed; without a broker, the sweep will."""
    if tasks.deliver_action.app.conf.task_always_eager:
        return  # Eager (tests, no worker): it would run now and find the action not due.
    # A little after the due time, so the claim never meets an action not yet due.
    requeue.publish_marked(OutboxAction, tasks.deliver_action, action_id, countdown=wait + 0.5)


def _fail(action: OutboxAction, reason: str) -> str:
    OutboxAction.objects.filter(pk=action.pk).update(
        status=Status.FAILED, claimed_until=None, last_error=reason, updated_at=timezone.now()
    )
    if action.kind == Kind.LAUNCH:
        gate.failed(action)
    return Status.FAILED


def sweep(now: dt.datetime | None = None) -> int:
    """Reclaim actions whose sender died mid-way; enqueue due ones that no task holds."""
    now = now or timezone.now()
    expired = OutboxAction.objects.filter(status=Status.SENDING, claimed_until__lt=now)
    expired.filter(attempts__gte=MAX_ATTEMPTS).update(
        status=Status.FAILED,
        claimed_until=None,
        last_error=f"Sending was interrupted {MAX_ATTEMPTS} times; the portal gave up.",
        updated_at=now,
    )
    # A sender that died left the row in `sending`; its outcome is unknown, so it goes
    # back to pending and the next attempt checks whether it took effect first.
    expired.filter(attempts__lt=MAX_ATTEMPTS).update(
        status=Status.PENDING, claimed_until=None, updated_at=now
    )
    return requeue.enqueue_due(
        OutboxAction,
        tasks.deliver_action,
        pending=Status.PENDING,
        order_by="next_attempt_at",
        now=now,
    )
