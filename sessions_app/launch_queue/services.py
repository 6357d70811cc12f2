"""Launch queue writes: a launch's ticket, cancelling and reordering it, an account's caps.

Each asks `access` first, locks what it changes and audits in the same transaction, like
the other services (docs/launch-queue.md).
"""

from __future__ import annotations

import time
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from sessions_app import access
from sessions_app.access import ActionNotAllowed
from sessions_app.audit import chain as audit
from sessions_app.audit.actions import AuditAction
from sessions_app.audit.chain import Target
from sessions_app.launch_queue import gate
from sessions_app.models import JulesConnection, LaunchCaps, LaunchTicket, OutboxAction, Session

Status = LaunchTicket.Status
MAX_CAP = 100_000


def ticket_open(
    *,
    action: OutboxAction,
    any_connection: bool = False,
    rerun_of: Session | None = None,
) -> LaunchTicket:
    """The launch's place in its team's queue; call inside the launch's transaction.

    Its lane is how many launches of the same person already wait, so the order takes one
    launch of each person in turn (round robin) and then the next round.
    """
    waiting = LaunchTicket.objects.filter(
        team_id=action.team_id, launcher=action.actor, status=Status.QUEUED
    ).count()
    return LaunchTicket.objects.create(
        action=action,
        team_id=action.team_id,
        connection=action.connection,
        launcher=action.actor,
        any_connection=any_connection,
        source_name=str(action.payload.get("source") or ""),
        lane=waiting,
        seq=time.time_ns() // 1000,
        rerun_of=rerun_of,
    )


def ticket_cancel(
    *, user: Any, ticket: LaunchTicket, request: HttpRequest | None = None
) -> LaunchTicket:
    """Take a waiting launch out of the queue; one already being created is past that."""
    role = access.require_in_team(user, ticket.team_id)
    access.require(access.may_cancel_launch(user, role, ticket.launcher_id))
    with transaction.atomic():
        locked = LaunchTicket.objects.select_for_update().get(pk=ticket.pk)
        if locked.status == Status.CANCELLED:
            return locked
        # The same conditional update as the outbox's claim: a worker that took the action
        # first wins, and then it is too late to cancel.
        now = timezone.now()
        taken = OutboxAction.objects.filter(
            pk=locked.action_id, status=OutboxAction.Status.PENDING
        ).update(
            status=OutboxAction.Status.FAILED,
            last_error=f"Cancelled in the queue by {user.get_username()}.",
            updated_at=now,
        )
        if locked.status != Status.QUEUED or not taken:
            raise ActionNotAllowed("Too late to cancel: Jules is creating this session already.")
        locked.status = Status.CANCELLED
        locked.save(update_fields=["status", "updated_at"])
        audit.record(
            AuditAction.QUEUE_CANCEL,
            actor=user,
            team=locked.team_id,
            target=Target.of_connection(locked.connection),
            details={"action_id": str(locked.action_id)},
            request=request,
        )
        transaction.on_commit(lambda: gate.wake(locked.connection))
    return locked


def ticket_move(
    *, user: Any, ticket: LaunchTicket, direction: str, request: HttpRequest | None = None
) -> LaunchTicket:
    """Swap a waiting launch with its neighbour in the team's order (admins only)."""
    access.require(access.may_reorder_queue(access.require_in_team(user, ticket.team_id)))
    if direction not in ("up", "down"):
        raise ActionNotAllowed("Move a launch up or down.")
    with transaction.atomic():
        queued = gate.ordered(
            LaunchTicket.objects.select_for_update().filter(
                team_id=ticket.team_id, status=Status.QUEUED
            )
        )
        order = list(queued)
        index = next((i for i, t in enumerate(order) if t.pk == ticket.pk), None)
        if index is None:
            raise ActionNotAllowed("This launch is no longer waiting in the queue.")
        other = index - 1 if direction == "up" else index + 1
        if not 0 <= other < len(order):
            return order[index]
        mine, theirs = order[index], order[other]
        (mine.lane, mine.seq), (theirs.lane, theirs.seq) = theirs.order, mine.order
        if mine.order == theirs.order:  # Equal keys: separate them by a microsecond.
            mine.seq += -1 if direction == "up" else 1
        LaunchTicket.objects.bulk_update([mine, theirs], ["lane", "seq"])
        audit.record(
            AuditAction.QUEUE_MOVE,
            actor=user,
            team=mine.team_id,
            target=Target.of_connection(mine.connection),
            details={"action_id": str(mine.action_id), "direction": direction},
            request=request,
        )
    return mine


def caps_update(
    *,
    user: Any,
    connection: JulesConnection,
    tier: str,
    daily_cap: int | None = None,
    concurrent_cap: int | None = None,
    max_in_flight: int | None = None,
    request: HttpRequest | None = None,
) -> LaunchCaps:
    """Set the account's plan tier or custom caps (admins); an unset tier learns again."""
    access.require(access.may_set_caps(access.require_in_team(user, connection.team_id)))
    if tier not in LaunchCaps.Tier.values:
        raise ActionNotAllowed("Pick a plan tier, custom numbers or none.")
    if tier == LaunchCaps.Tier.CUSTOM and not (daily_cap or concurrent_cap):
        raise ActionNotAllowed("Custom caps need a daily or a concurrent number.")
    for value in (daily_cap, concurrent_cap):
        if value is not None and not 1 <= value <= MAX_CAP:
            raise ActionNotAllowed(f"A cap is a whole number from 1 to {MAX_CAP}.")
    if max_in_flight is not None and not 1 <= max_in_flight <= 10:
        raise ActionNotAllowed("Creates in flight: from 1 to 10.")
    with transaction.atomic():
        gate.caps_for(connection.pk)
        caps = LaunchCaps.objects.select_for_update().get(connection_id=connection.pk)
        before = {
            "tier": caps.tier,
            "daily_cap": caps.daily_cap,
            "concurrent_cap": caps.concurrent_cap,
            "max_in_flight": caps.max_in_flight,
        }
        custom = tier == LaunchCaps.Tier.CUSTOM
        caps.tier = tier
        caps.daily_cap = daily_cap if custom else None
        caps.concurrent_cap = concurrent_cap if custom else None
        if max_in_flight is not None:
            caps.max_in_flight = max_in_flight
        if not tier:
            # Unset: learn afresh rather than keep numbers learned long ago.
            caps.learned_daily_cap = caps.learned_concurrent_cap = caps.learned_at = None
        after = {
            "tier": caps.tier,
            "daily_cap": caps.daily_cap,
            "concurrent_cap": caps.concurrent_cap,
            "max_in_flight": caps.max_in_flight,
        }
        if after == before:
            return caps
        caps.save()
        audit.record(
            AuditAction.QUEUE_CAPS,
            actor=user,
            team=connection.team_id,
            target=Target.of_connection(connection),
            details={"before": before, "after": after},
            request=request,
        )
        transaction.on_commit(lambda: gate.wake(connection))
    return caps
