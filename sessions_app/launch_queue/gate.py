"""The gate the outbox asks before it creates a session: may this launch start now, where?

A launch starts when the account has room under every cap (concurrent: its sessions still
active plus creates in flight; daily: creates in the last 24 hours; creates in flight) and
no launch ahead of it in the team's fair order competes for that room. The counting and
the admission happen under a row lock on the connection's `LaunchCaps`, so two workers
never admit past a cap; the create itself runs after the lock is released.
Why and how: docs/launch-queue.md.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from jules import errors as jerrors
from sessions_app import tasks
from sessions_app.models import (
    JulesConnection,
    LaunchCaps,
    LaunchTicket,
    OutboxAction,
    Session,
    SessionState,
    Source,
)
from sessions_app.outbox import requeue

logger = logging.getLogger(__name__)

Status = LaunchTicket.Status
Wait = LaunchTicket.Wait
DAY = dt.timedelta(hours=24)
# The states in which a session holds one of the account's concurrent slots (as the
# simulator counts them: docs/jules-api.md#quotas-and-rate-limits).
SLOT_STATES = (
    SessionState.QUEUED,
    SessionState.PLANNING,
    SessionState.AWAITING_PLAN_APPROVAL,
    SessionState.AWAITING_USER_FEEDBACK,
    SessionState.IN_PROGRESS,
)
QUOTA_REASONS = {"DAILY_SESSION_LIMIT": "daily", "CONCURRENT_SESSION_LIMIT": "concurrent"}
# How soon a waiting launch asks again: the first few often (a slot may free any moment),
# the rest rarely, since a launch that leaves the queue wakes the next ones.
SOON_SECONDS = 3
LATER_SECONDS = 30
LATEST_SECONDS = 300
DAILY_RECHECK_CAP_SECONDS = 3600


@dataclass(frozen=True)
class Usage:
    active: int
    created_today: int
    in_flight: int
    window_starts: tuple[dt.datetime, ...]  # create times in the 24 h window, oldest first


@dataclass(frozen=True)
class Room:
    """What the caps leave of an account now; None where no cap is known."""

    daily: float
    concurrent: float
    in_flight: int

    @property
    def free(self) -> int:
        value = min(self.daily, self.concurrent, self.in_flight)
        return max(0, int(value)) if math.isfinite(value) else self.in_flight


@dataclass(frozen=True)
class Verdict:
    admitted: bool
    connection: JulesConnection | None = None
    reason: str = ""
    detail: str = ""
    retry_in: float = SOON_SECONDS


def caps_for(connection_id: int) -> LaunchCaps:
    caps, _ = LaunchCaps.objects.get_or_create(connection_id=connection_id)
    return caps


def usage(connection_id: int, now: dt.datetime | None = None) -> Usage:
    now = now or timezone.now()
    sessions = Session.objects.filter(connection_id=connection_id)
    starts: tuple[dt.datetime, ...] = tuple(
        start
        for start in sessions.filter(create_time__gte=now - DAY)
        .order_by("create_time")
        .values_list("create_time", flat=True)
        if start is not None
    )
    return Usage(
        active=sessions.filter(deleted_remotely=False, state__in=SLOT_STATES).count(),
        created_today=len(starts),
        # An action the outbox gave up on (its workers kept dying) holds no slot.
        in_flight=LaunchTicket.objects.filter(
            connection_id=connection_id,
            status=Status.CREATING,
            action__status__in=[OutboxAction.Status.PENDING, OutboxAction.Status.SENDING],
        ).count(),
        window_starts=starts,
    )


def room(caps: LaunchCaps, used: Usage) -> Room:
    daily, concurrent = caps.effective()
    return Room(
        daily=math.inf if daily is None else daily - used.created_today - used.in_flight,
        concurrent=math.inf if concurrent is None else concurrent - used.active - used.in_flight,
        in_flight=max(0, caps.max_in_flight - used.in_flight),
    )


def competing(connection: JulesConnection) -> Q:
    """Queued launches that could take a slot of this connection."""
    sources = Source.objects.filter(connection_id=connection.pk).values("name")
    return Q(team_id=connection.team_id, status=Status.QUEUED) & (
        Q(connection_id=connection.pk, any_connection=False)
        | (Q(any_connection=True) & (Q(source_name="") | Q(source_name__in=sources)))
    )


def before(ticket: LaunchTicket) -> Q:
    return (
        Q(lane__lt=ticket.lane)
        | Q(lane=ticket.lane, seq__lt=ticket.seq)
        | Q(lane=ticket.lane, seq=ticket.seq, action_id__lt=ticket.action_id)
    )


def ordered(tickets: QuerySet[LaunchTicket]) -> QuerySet[LaunchTicket]:
    return tickets.order_by("lane", "seq", "action_id")


def candidates(ticket: LaunchTicket) -> list[JulesConnection]:
    """Where the launch may start: its own connection, or any of the team's that has its
    repository (every one for a repoless launch), its own first."""
    own = ticket.connection
    if not ticket.any_connection:
        return [own] if own.enabled else []
    others = JulesConnection.objects.filter(team_id=ticket.team_id, enabled=True).exclude(pk=own.pk)
    if ticket.source_name:
        others = others.filter(sources__name=ticket.source_name)
    return ([own] if own.enabled else []) + list(others.order_by("pk").distinct())


def admit(action: OutboxAction) -> Verdict:
    """Whether the launch may be created now, and on which connection; else why it waits."""
    ticket = LaunchTicket.objects.select_related("connection").filter(action_id=action.pk).first()
    if ticket is None:  # A launch opened before the queue existed.
        return Verdict(True, action.connection)
    if ticket.status == Status.CREATING:  # A worker died mid-create; it keeps its slot.
        return Verdict(True, ticket.connection)
    if ticket.status != Status.QUEUED:
        return Verdict(False, reason=ticket.status, detail="This launch left the queue.")
    options = candidates(ticket)
    if not options:
        detail = (
            "Every connection of the team that has this repository is disabled."
            if ticket.any_connection
            else f"The connection {ticket.connection.label} is disabled; a team admin can enable it."
        )
        return _waiting(ticket, Verdict(False, reason=Wait.DISABLED, detail=detail, retry_in=60))
    first: Verdict | None = None
    for connection in options:
        verdict = _try(ticket, connection)
        if verdict.admitted:
            return verdict
        first = first or verdict
    assert first is not None
    return _waiting(ticket, first)


def _ahead(ticket: LaunchTicket, connection: JulesConnection) -> int:
    return (
        LaunchTicket.objects.filter(competing(connection))
        .filter(before(ticket))
        .exclude(pk=ticket.pk)
        .count()
    )


def _try(ticket: LaunchTicket, connection: JulesConnection) -> Verdict:
    caps = caps_for(connection.pk)
    # A first look without the lock: most checks find no room, and they must not queue
    # up on the lock ahead of the one launch that may start.
    now = timezone.now()
    used = usage(connection.pk, now)
    left = room(caps, used)
    ahead = _ahead(ticket, connection)
    if ahead >= left.free:
        return _why(caps, used, left, ahead, connection, now)
    with transaction.atomic():
        caps = LaunchCaps.objects.select_for_update().get(connection_id=connection.pk)
        now = timezone.now()
        used = usage(connection.pk, now)
        left = room(caps, used)
        ahead = _ahead(ticket, connection)
        if ahead < left.free:
            claimed = LaunchTicket.objects.filter(pk=ticket.pk, status=Status.QUEUED).update(
                status=Status.CREATING,
                connection=connection,
                admitted_at=now,
                wait_reason=Wait.NONE,
                wait_detail="",
                updated_at=now,
            )
            if claimed:
                OutboxAction.objects.filter(pk=ticket.action_id).update(connection=connection)
                return Verdict(True, connection)
            return Verdict(False, reason=Wait.POSITION, detail="This launch left the queue.")
        return _why(caps, used, left, ahead, connection, now)


def _why(
    caps: LaunchCaps,
    used: Usage,
    left: Room,
    ahead: int,
    connection: JulesConnection,
    now: dt.datetime,
) -> Verdict:
    daily, concurrent = caps.effective()
    # Far back in line, asking often only costs: a launch that leaves wakes the next ones.
    soon = (
        SOON_SECONDS
        if ahead < caps.max_in_flight + 2
        else min(LATEST_SECONDS, max(LATER_SECONDS, 2 * ahead))
    )
    label = connection.label
    if left.daily <= 0 and daily is not None:
        index = min(len(used.window_starts) - 1, max(0, ahead - int(left.daily)))
        frees = used.window_starts[index] + DAY if used.window_starts else now
        wait = min(DAILY_RECHECK_CAP_SECONDS, max(SOON_SECONDS, (frees - now).total_seconds()))
        return Verdict(
            False,
            reason=Wait.DAILY,
            detail=f"{label} has created {used.created_today} of {daily} sessions in the last 24 hours.",
            retry_in=wait,
        )
    if left.concurrent <= 0 and concurrent is not None:
        return Verdict(
            False,
            reason=Wait.CONCURRENT,
            detail=f"{label} has {used.active + used.in_flight} of {concurrent} sessions running at once.",
            retry_in=soon,
        )
    if left.in_flight <= 0:
        return Verdict(
            False,
            reason=Wait.IN_FLIGHT,
            detail=f"{label} has {used.in_flight} creates in flight (at most {caps.max_in_flight} at once).",
            retry_in=soon,
        )
    return Verdict(
        False,
        reason=Wait.POSITION,
        detail=f"{ahead} earlier launch{'es' if ahead != 1 else ''} on {label} go first.",
        retry_in=soon,
    )


def _waiting(ticket: LaunchTicket, verdict: Verdict) -> Verdict:
    LaunchTicket.objects.filter(pk=ticket.pk, status=Status.QUEUED).update(
        wait_reason=verdict.reason, wait_detail=verdict.detail[:300], updated_at=timezone.now()
    )
    return verdict


# --- after the create ------------------------------------------------------------------


def started(action: OutboxAction) -> None:
    now = timezone.now()
    LaunchTicket.objects.filter(pk=action.pk).update(
        status=Status.STARTED, started_at=now, wait_reason=Wait.NONE, wait_detail="", updated_at=now
    )
    wake(action.connection)


def failed(action: OutboxAction) -> None:
    LaunchTicket.objects.filter(pk=action.pk, status__in=[Status.QUEUED, Status.CREATING]).update(
        status=Status.FAILED, updated_at=timezone.now()
    )
    wake(action.connection)


def refused(action: OutboxAction, exc: jerrors.JulesError, reason: str) -> None:
    """Jules said no for now: back in the queue (its place kept), learning a cap if asked."""
    if isinstance(exc, jerrors.RateLimitedError):
        learn(action.connection, exc)
    LaunchTicket.objects.filter(pk=action.pk, status=Status.CREATING).update(
        status=Status.QUEUED,
        wait_reason=Wait.REFUSED,
        wait_detail=reason[:300],
        updated_at=timezone.now(),
    )
    wake(action.connection)


def learn(connection: JulesConnection, exc: jerrors.JulesError) -> None:
    """A quota refusal lowers the learned cap to what the account held when it came;
    caps an admin set are left alone. A 429 that names no quota is rate limiting, which
    the backoff handles: learning a cap from it would hold launches back for good."""
    kind = QUOTA_REASONS.get(exc.reason or "")
    if kind is None:
        return
    with transaction.atomic():
        caps_for(connection.pk)
        caps = LaunchCaps.objects.select_for_update().get(connection_id=connection.pk)
        if caps.is_set:
            return
        used = usage(connection.pk)
        # This create was in flight: what the account held without it.
        held_daily = max(1, used.created_today + used.in_flight - 1)
        held_now = max(1, used.active + used.in_flight - 1)
        changed = False
        learned_daily, learned_now = caps.effective()  # None once stale
        if learned_daily is None and learned_now is None:
            caps.learned_daily_cap = caps.learned_concurrent_cap = None
        if kind == "daily" and (learned_daily is None or held_daily < learned_daily):
            caps.learned_daily_cap, changed = held_daily, True
        if kind == "concurrent" and (learned_now is None or held_now < learned_now):
            caps.learned_concurrent_cap, changed = held_now, True
        if changed:
            caps.learned_at = timezone.now()
            caps.save(update_fields=["learned_daily_cap", "learned_concurrent_cap", "learned_at"])
            logger.info("Learned launch caps of connection %s: %s", connection.pk, caps.effective())


def wake(connection: JulesConnection, count: int | None = None) -> int:
    """Ask the next queued launches that compete for this connection to try now."""
    if tasks.deliver_action.app.conf.task_always_eager:
        return 0  # Eager (tests, no worker): the sweep or the caller delivers.
    count = count or caps_for(connection.pk).max_in_flight + 1
    ids = list(
        ordered(LaunchTicket.objects.filter(competing(connection))).values_list(
            "action_id", flat=True
        )[:count]
    )
    now = timezone.now()
    due = list(
        OutboxAction.objects.filter(
            pk__in=ids, status=OutboxAction.Status.PENDING, next_attempt_at__gt=now
        ).values_list("pk", flat=True)
    )
    if not due:
        return 0
    OutboxAction.objects.filter(pk__in=due, status=OutboxAction.Status.PENDING).update(
        next_attempt_at=now
    )
    for pk in due:
        # Marked as held, so the outbox sweep does not publish it a second time.
        requeue.publish_after_commit(OutboxAction, tasks.deliver_action, str(pk))
    return len(due)


def tick(connection_id: int | None = None) -> int:
    """Wake the head of each connection's queue that has room now (of one connection, after
    its sync pass); beat runs it often.

    A slot frees when Jules ends a session, which the portal learns from the sync; this
    is what starts the next launch then, without every waiting launch asking on a timer.
    """
    woken = 0
    teams = LaunchTicket.objects.filter(status=Status.QUEUED).values("team_id")
    connections = JulesConnection.objects.filter(team_id__in=teams, enabled=True)
    if connection_id is not None:
        connections = connections.filter(pk=connection_id)
    for connection in connections:
        free = room(caps_for(connection.pk), usage(connection.pk)).free
        if free > 0:
            woken += wake(connection, count=free)
    return woken
