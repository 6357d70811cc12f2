"""What one session's rollup row says, from its rows: pure functions, no ORM.

The definitions are those of docs/analytics.md, "What each figure means".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sessions_app.models.jules import RESTING_STATES, ActivityKind, SessionState

# PositiveIntegerField's ceiling on every database Django supports.
MAX_SECONDS = 2**31 - 1
REASON_LENGTH = 200


@dataclass(frozen=True)
class Event:
    """An activity as the rollup needs it."""

    kind: str
    at: dt.datetime | None
    failure_reason: str = ""


def _seconds(start: dt.datetime | None, end: dt.datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return max(0, min(MAX_SECONDS, int((end - start).total_seconds())))


def _total(parts: list[int]) -> int | None:
    return min(MAX_SECONDS, sum(parts)) if parts else None


def approval_waits(events: Sequence[Event]) -> list[int]:
    """Each approval's wait since the plan it approved was generated."""
    waits: list[int] = []
    plan_at: dt.datetime | None = None
    for event in events:
        if event.kind == ActivityKind.PLAN_GENERATED:
            plan_at = event.at
        elif event.kind == ActivityKind.PLAN_APPROVED and plan_at is not None:
            seconds = _seconds(plan_at, event.at)
            if seconds is not None:
                waits.append(seconds)
            plan_at = None
    return waits


def answer_waits(events: Sequence[Event]) -> list[int]:
    """Each wait from an agent's message to the person's reply.

    Anything else the agent does in between (a plan, progress) means it went on without an
    answer, so that message was no question and starts no wait.
    """
    waits: list[int] = []
    asked_at: dt.datetime | None = None
    for event in events:
        if event.kind == ActivityKind.AGENT_MESSAGED:
            asked_at = event.at
        elif event.kind == ActivityKind.USER_MESSAGED:
            seconds = _seconds(asked_at, event.at)
            if seconds is not None:
                waits.append(seconds)
            asked_at = None
        else:
            asked_at = None
    return waits


def patch_lines(patch: str) -> tuple[int, int]:
    """Lines added and removed by a unified diff (file headers are not lines)."""
    added = removed = 0
    for line in patch.splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return added, removed


def duration(state: str, created: dt.datetime | None, events: Sequence[Event]) -> int | None:
    """Seconds from creation to the end, for sessions that rest; None while one runs."""
    if state not in RESTING_STATES:
        return None
    ends = [
        e.at
        for e in events
        if e.at and e.kind in (ActivityKind.SESSION_COMPLETED, ActivityKind.SESSION_FAILED)
    ]
    times = ends or [e.at for e in events if e.at]
    return _seconds(created, max(times)) if times else None


def facts_for(
    *,
    state: str,
    created: dt.datetime | None,
    events: Iterable[Event],
    patches: Iterable[str],
    has_pr: bool,
) -> dict[str, Any]:
    """The measured fields of a session's rollup row; `events` in time order."""
    ordered = list(events)
    first_plan = next((e.at for e in ordered if e.kind == ActivityKind.PLAN_GENERATED), None)
    added = removed = 0
    for patch in patches:
        plus, minus = patch_lines(patch)
        added, removed = added + plus, removed + minus
    reasons = [e.failure_reason for e in ordered if e.kind == ActivityKind.SESSION_FAILED]
    return {
        "seconds_to_plan": _seconds(created, first_plan),
        "seconds_awaiting_approval": _total(approval_waits(ordered)),
        "seconds_awaiting_answers": _total(answer_waits(ordered)),
        "seconds_duration": duration(state, created, ordered),
        "failure_reason": (
            " ".join(reasons[-1].split())[:REASON_LENGTH]
            if state == SessionState.FAILED and reasons
            else ""
        ),
        "plans_generated": sum(1 for e in ordered if e.kind == ActivityKind.PLAN_GENERATED),
        "lines_added": min(MAX_SECONDS, added),
        "lines_removed": min(MAX_SECONDS, removed),
        "has_pr": has_pr,
    }
