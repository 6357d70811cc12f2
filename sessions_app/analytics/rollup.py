"""Keep the rollup rows (`SessionFacts`) true: the sync calls `refresh_facts` with the ids
of the sessions it wrote, inside the transaction that wrote them (docs/analytics.md).

A refresh reads the sessions' narrow columns, their activities' kinds and times, their
outputs, completed activities' change sets, the portal's approvals and the current rows,
in six queries per 500 sessions, and writes only the rows whose facts changed, so a
re-sync that changes nothing writes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from jules import resources as jr
from sessions_app import access
from sessions_app.analytics.facts import Event, facts_for
from sessions_app.models import (
    Activity,
    ActivityKind,
    OutboxAction,
    Session,
    SessionFacts,
    SessionOutput,
)

CHUNK = 500
FIELDS = [
    f.name
    for f in SessionFacts._meta.concrete_fields
    if not f.primary_key and f.name != "computed_at"
]


def refresh_facts(session_ids: Iterable[int]) -> int:
    """Recompute the facts of these sessions; returns how many rows were written."""
    ids = sorted({pk for pk in session_ids if pk is not None})
    written = 0
    with transaction.atomic(savepoint=False):
        for start in range(0, len(ids), CHUNK):
            written += _refresh(ids[start : start + CHUNK])
    return written


def batch_session_ids(batch: Any) -> list[int]:
    """The sessions of a batch of activities, whichever store prepared it, but those just
    inserted with their bookkeeping (`facts_for_new` covers them)."""
    ids = getattr(batch, "session_ids", None)
    if ids is not None:
        return list(ids)
    return [session.pk for session, _ in batch.fetched if session.pk not in batch.booked]


def facts_for_new(rows: Iterable[tuple[Session, jr.Session, list[jr.Activity]]]) -> int:
    """Insert the rollup rows of sessions this transaction inserted, from what the sync
    holds in memory: their activities and outputs were read a moment ago, and no approval
    of the portal can name a session that did not exist, so nothing is read back."""
    now = timezone.now()
    facts = []
    for session, remote, items in rows:
        seen: set[str] = set()
        events = []
        for item in sorted(
            (a for a in items if a.id),
            key=lambda a: (a.create_time is None, a.create_time or now),
        ):
            if item.id[:64] not in seen:
                seen.add(item.id[:64])
                events.append(Event(item.kind, item.create_time, item.failure_reason or ""))
        patches = [o.change_set.unidiff_patch for o in remote.outputs if o.change_set]
        if not any(patches):
            completed = [a for a in items if a.kind == ActivityKind.SESSION_COMPLETED]
            patches = [
                artifact.change_set.unidiff_patch
                for artifact in (completed[-1].artifacts if completed else [])
                if artifact.change_set
            ]
        row = {
            "id": session.pk,
            "team_id": session.team_id,
            "connection_id": session.connection_id,
            "repo": session.repo,
            "launched_by_id": session.launched_by_id,
            "create_time": session.create_time,
            "state": session.state,
            "deleted_remotely": session.deleted_remotely,
            "pr_url": session.pr_url,
        }
        has_pr = any(o.pull_request for o in remote.outputs)
        values = _values(row, events, [p for p in patches if p], has_pr)
        facts.append(
            {"session_id": session.pk, "computed_at": now, "approved_by_id": None, **values}
        )
    _insert(facts)
    return len(facts)


COLUMNS = [(f.attname, f.column) for f in SessionFacts._meta.concrete_fields]


def _insert(facts: list[dict[str, Any]]) -> None:
    """New rows, by COPY on PostgreSQL: a model instance each costs more than computing
    the facts (docs/performance.md, "Analytics")."""
    if not facts:
        return
    if connection.vendor != "postgresql":
        SessionFacts.objects.bulk_create([SessionFacts(**f) for f in facts], ignore_conflicts=True)
        return
    table = SessionFacts._meta.db_table
    names = ", ".join(f'"{column}"' for _, column in COLUMNS)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy,
    ):
        for fact in facts:
            copy.write_row([fact[attname] for attname, _ in COLUMNS])


def _refresh(ids: list[int]) -> int:
    sessions = list(
        Session.objects.filter(pk__in=ids).values(
            "id",
            "team_id",
            "connection_id",
            "repo",
            "launched_by_id",
            "create_time",
            "state",
            "deleted_remotely",
            "pr_url",
        )
    )
    events: dict[int, list[Event]] = defaultdict(list)
    for session_id, kind, at, reason in (
        Activity.objects.filter(session_id__in=ids)
        .order_by("session_id", "create_time", "id")
        .values_list("session_id", "kind", "create_time", "failure_reason")
    ):
        events[session_id].append(Event(kind, at, reason))
    patches: dict[int, list[str]] = defaultdict(list)
    with_pr: set[int] = set()
    for session_id, kind, patch in SessionOutput.objects.filter(session_id__in=ids).values_list(
        "session_id", "kind", "patch"
    ):
        if kind == SessionOutput.Kind.PULL_REQUEST:
            with_pr.add(session_id)
        if patch:
            patches[session_id].append(patch)
    # Without a change set among its outputs, a completed session's change is the one its
    # last activity carries (docs/jules-api.md#activity-kinds).
    for session_id, artifacts in (
        Activity.objects.filter(session_id__in=ids, kind=ActivityKind.SESSION_COMPLETED)
        .exclude(session_id__in=list(patches))
        .order_by("session_id", "create_time", "id")
        .values_list("session_id", "artifacts")
    ):
        patches[session_id] = [
            a.get("patch") or ""
            for a in artifacts or []
            if isinstance(a, dict) and a.get("kind") == "changeSet"
        ]
    approvals: dict[int, list[OutboxAction]] = defaultdict(list)
    for action in OutboxAction.objects.filter(
        session_id__in=ids, kind=OutboxAction.Kind.APPROVE
    ).only("session_id", "actor_id", "status", "created_at"):
        approvals[action.session_id].append(action)  # type: ignore[index]
    existing = {f.session_id: f for f in SessionFacts.objects.filter(session_id__in=ids)}
    now = timezone.now()
    to_create: list[SessionFacts] = []
    to_update: list[SessionFacts] = []
    for row in sessions:
        values = _values(row, events[row["id"]], patches[row["id"]], row["id"] in with_pr)
        counting = access.counting_approval(approvals[row["id"]])
        values["approved_by_id"] = (
            counting.actor_id
            if counting is not None and counting.status != OutboxAction.Status.FAILED
            else None
        )
        current = existing.get(row["id"])
        if current is None:
            to_create.append(SessionFacts(session_id=row["id"], computed_at=now, **values))
        elif any(getattr(current, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(current, name, value)
            current.computed_at = now
            to_update.append(current)
    SessionFacts.objects.bulk_create(to_create)
    if to_update:
        SessionFacts.objects.bulk_update(to_update, [*FIELDS, "computed_at"])
    return len(to_create) + len(to_update)


def _values(
    row: Mapping[str, Any], events: list[Event], patches: list[str], has_pr: bool
) -> dict[str, Any]:
    created = row["create_time"]
    return {
        "team_id": row["team_id"],
        "connection_id": row["connection_id"],
        "repo": row["repo"],
        "launched_by_id": row["launched_by_id"],
        "created_day": timezone.localdate(created) if created else None,
        "state": row["state"],
        "deleted_remotely": row["deleted_remotely"],
        # The same rule as the list's "Outside the portal" filter: no launcher on record.
        "outside_portal": row["launched_by_id"] is None,
        **facts_for(
            state=row["state"],
            created=created,
            events=events,
            patches=patches,
            has_pr=has_pr or bool(row["pr_url"]),
        ),
    }
