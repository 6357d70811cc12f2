"""What the queue page shows: each waiting launch with its position, why it waits and when
it may start, and each connection's caps and use (docs/launch-queue.md)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from django.db.models import Avg, DurationField, ExpressionWrapper, F
from django.utils import timezone

from sessions_app import access
from sessions_app.launch_queue import gate
from sessions_app.models import (
    JulesConnection,
    LaunchCaps,
    LaunchTicket,
    Session,
    SessionState,
    Team,
)

Status = LaunchTicket.Status
RECENT = 10
# Finished sessions whose run times estimate how long a slot stays taken.
DURATION_SAMPLE = 50


@dataclass(frozen=True)
class ConnectionUse:
    connection: JulesConnection
    caps: LaunchCaps
    daily: int | None
    concurrent: int | None
    active: int
    created_today: int
    in_flight: int
    free: int
    typical_run: dt.timedelta | None

    @property
    def learned(self) -> bool:
        return not self.caps.is_set and (self.daily is not None or self.concurrent is not None)


@dataclass(frozen=True)
class QueueEntry:
    ticket: LaunchTicket
    position: int
    prompt: str
    title: str
    launcher: str
    connection_label: str
    status: str
    reason: str
    why: str
    estimate: dt.datetime | None
    may_cancel: bool

    @property
    def action_id(self) -> str:
        return str(self.ticket.action_id)


@dataclass(frozen=True)
class QueueView:
    team: Team
    entries: list[QueueEntry]
    connections: list[ConnectionUse]
    recent: list[LaunchTicket]
    may_reorder: bool
    now: dt.datetime

    @property
    def version(self) -> str:
        """What a poll compares: positions, states and reasons, not the clock."""
        parts = [f"{e.action_id}:{e.status}:{e.reason}:{e.position}" for e in self.entries]
        parts += [f"{u.connection.pk}:{u.active}:{u.in_flight}" for u in self.connections]
        parts += [str(t.pk) for t in self.recent]
        import hashlib

        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def typical_run(connection_id: int) -> dt.timedelta | None:
    """The mean run time of the connection's latest finished sessions, if any."""
    finished = Session.objects.filter(
        connection_id=connection_id,
        state__in=[SessionState.COMPLETED, SessionState.FAILED],
        create_time__isnull=False,
        update_time__isnull=False,
    ).order_by("-update_time")[:DURATION_SAMPLE]
    ids = list(finished.values_list("pk", flat=True))
    if not ids:
        return None
    mean = Session.objects.filter(pk__in=ids).aggregate(
        run=Avg(
            ExpressionWrapper(F("update_time") - F("create_time"), output_field=DurationField())
        )
    )["run"]
    return mean if isinstance(mean, dt.timedelta) else None


def connection_use(
    connection: JulesConnection, now: dt.datetime
) -> tuple[ConnectionUse, gate.Usage]:
    caps = gate.caps_for(connection.pk)
    used = gate.usage(connection.pk, now)
    daily, concurrent = caps.effective()
    left = gate.room(caps, used)
    use = ConnectionUse(
        connection=connection,
        caps=caps,
        daily=daily,
        concurrent=concurrent,
        active=used.active,
        created_today=used.created_today,
        in_flight=used.in_flight,
        free=left.free if connection.enabled else 0,
        typical_run=typical_run(connection.pk),
    )
    return use, used


def estimate(
    use: ConnectionUse, used: gate.Usage, ahead: int, now: dt.datetime
) -> dt.datetime | None:
    """When the launch with `ahead` competitors before it may start, roughly; None when
    nothing tells (a disabled connection, no finished session to time)."""
    if not use.connection.enabled:
        return None
    if ahead < use.free:
        return now
    left = gate.room(use.caps, used)
    start = now
    if use.daily is not None and left.daily <= ahead and used.window_starts:
        index = min(len(used.window_starts) - 1, max(0, ahead - int(left.daily)))
        start = max(start, used.window_starts[index] + gate.DAY)
    if use.concurrent is not None and left.concurrent <= ahead:
        if use.typical_run is None:
            return None
        waiting = ahead - max(0, int(left.concurrent)) + 1
        waves = math.ceil(waiting / max(1, use.concurrent))
        start = max(start, now + use.typical_run * waves)
    return start


def team_queue(team: Team, user: Any = None, role: str | None = None) -> QueueView:
    now = timezone.now()
    connections = list(JulesConnection.objects.filter(team=team).order_by("label"))
    uses = {c.pk: connection_use(c, now) for c in connections}
    tickets = list(
        gate.ordered(
            LaunchTicket.objects.filter(team=team, status__in=[Status.QUEUED, Status.CREATING])
        ).select_related("action", "launcher", "connection")
    )
    # Creates in flight first (they hold their slots), then the waiting order.
    tickets.sort(key=lambda t: t.status != Status.CREATING)
    reasons = dict(LaunchTicket.Wait.choices)
    entries = []
    ahead_on: dict[int, int] = {}
    for position, ticket in enumerate(tickets, start=1):
        use, used = uses[ticket.connection_id]
        ahead = ahead_on.get(ticket.connection_id, 0)
        if ticket.status == Status.QUEUED:
            ahead_on[ticket.connection_id] = ahead + 1
            when = estimate(use, used, ahead, now)
            why = reasons.get(ticket.wait_reason, "") if ticket.wait_reason else "About to start"
            if ticket.wait_detail:
                why = f"{why}: {ticket.wait_detail}"
        else:
            when, why = now, "Jules is creating it"
        launcher = ticket.launcher.get_username() if ticket.launcher else "someone"
        entries.append(
            QueueEntry(
                ticket=ticket,
                position=position,
                prompt=ticket.action.payload.get("prompt", ""),
                title=ticket.action.payload.get("title", ""),
                launcher=launcher,
                connection_label=ticket.connection.label,
                status=ticket.status,
                reason=ticket.wait_reason,
                why=why,
                estimate=when,
                may_cancel=ticket.status == Status.QUEUED
                and bool(access.may_cancel_launch(user, role, ticket.launcher_id)),
            )
        )
    recent = list(
        LaunchTicket.objects.filter(
            team=team, status__in=[Status.STARTED, Status.FAILED, Status.CANCELLED]
        )
        .select_related("action", "launcher", "connection")
        .order_by("-updated_at")[:RECENT]
    )
    return QueueView(
        team=team,
        entries=entries,
        connections=[uses[c.pk][0] for c in connections],
        recent=recent,
        may_reorder=bool(access.may_reorder_queue(role)),
        now=now,
    )


def ticket_for_user(user: Any, action_id: Any) -> LaunchTicket:
    """A ticket of one of the user's teams; 404 for anyone else."""
    from django.http import Http404

    ticket = (
        LaunchTicket.objects.select_related("connection", "launcher")
        .filter(pk=action_id, team__memberships__user=user)
        .first()
    )
    if ticket is None:
        raise Http404("No such launch.")
    return ticket


def launch_caps_context(connection: JulesConnection, form: Any = None) -> dict[str, Any]:
    """The caps part of a connection's page: its use now and the admins' form."""
    from sessions_app.launch_queue.forms import CapsForm

    use, _ = connection_use(connection, timezone.now())
    return {"queue_use": use, "caps_form": form or CapsForm.for_caps(use.caps)}
