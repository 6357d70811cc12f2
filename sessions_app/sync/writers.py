"""Idempotent bulk writes of remote data into the cache, and the transitions they observe."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from jules import resources as jr
from jules.client import JulesClient
from sessions_app.audit import chain as audit
from sessions_app.audit.chain import Target
from sessions_app.models import (
    Activity,
    JulesConnection,
    Session,
    SessionOutput,
    SessionTransition,
    Source,
)
from sessions_app.notifications import events as notify
from sessions_app.sync.bulk import (
    columns_of,
    insert_ignoring_conflicts,
    is_postgresql,
    stage,
    update_fields,
)
from sessions_app.sync.mapping import (
    ACTIVITY_FIELDS,
    ACTIVITY_JSON_POSITIONS,
    SESSION_FIELDS,
    activity_row,
    activity_values,
    next_poll_for,
    output_rows,
    session_values,
)


@dataclass
class SyncReport:
    sessions_seen: int = 0
    sessions_created: int = 0
    sessions_updated: int = 0
    sessions_deleted: int = 0
    activities_created: int = 0
    sources: int = 0
    transitions: int = 0
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    skipped: bool = False

    def merge(self, other: SyncReport) -> None:
        """Add the counts and errors of `other` (what a writer thread did) to this one."""
        self.sessions_created += other.sessions_created
        self.sessions_updated += other.sessions_updated
        self.sessions_deleted += other.sessions_deleted
        self.activities_created += other.activities_created
        self.transitions += other.transitions
        self.errors.extend(other.errors)
        other.sessions_created = other.sessions_updated = other.sessions_deleted = 0
        other.activities_created = other.transitions = 0
        other.errors = []

    def summary(self) -> str:
        return (
            f"sessions seen {self.sessions_seen}, new {self.sessions_created}, "
            f"changed {self.sessions_updated}, deleted {self.sessions_deleted}; "
            f"activities new {self.activities_created}; sources {self.sources}; "
            f"transitions {self.transitions}; requests {self.requests}; "
            f"errors {len(self.errors)}"
        )


@dataclass
class _Upserted:
    session: Session
    created: bool
    changed: bool
    previous_state: str
    previous_update_time: dt.datetime | None
    rewritten: bool = True
    # Inserted by this call with its activity bookkeeping already filled in (`preset`).
    preset: bool = False


def existing_sessions(
    connection: JulesConnection, remotes: Sequence[jr.Session]
) -> dict[str, Session]:
    """The cached rows of a page of remote sessions, by remote id."""
    ids = [r.id for r in remotes if r.id]
    if not ids:
        return {}
    return {
        s.remote_id: s for s in Session.objects.filter(connection=connection, remote_id__in=ids)
    }


def is_unchanged(current: Session, remote: jr.Session) -> bool:
    """Nothing the service says has changed and the activities were read to the end."""
    return (
        current.raw == remote.raw
        and not current.deleted_remotely
        and current.activities_read_for == current.update_time
    )


def upsert_sessions(
    connection: JulesConnection,
    remotes: Sequence[jr.Session],
    *,
    report: SyncReport,
    repos: dict[str, str] | None = None,
    launched_by: Any = None,
    existing: dict[str, Session] | None = None,
    preset: dict[str, dict[str, Any]] | None = None,
) -> list[_Upserted]:
    """Write a page of remote sessions; unchanged ones cost one read and no write.

    `existing`: the page's cached rows, when the caller already read them. `preset`: field
    values (the activity bookkeeping) for sessions this call creates, by remote id; they
    are written with the row only where the insert succeeds (`_Upserted.preset`).
    """
    if not remotes:
        return []
    now = timezone.now()
    by_id = {r.id: r for r in remotes if r.id}
    if existing is None:
        existing = existing_sessions(connection, remotes)
    preset = preset or {}
    results: list[_Upserted] = []
    to_create: list[Session] = []
    to_update: list[Session] = []
    transitions: list[SessionTransition] = []
    for remote_id, remote in by_id.items():
        values = session_values(remote, now, repos)
        current = existing.get(remote_id)
        if current is None:
            session = Session(
                team_id=connection.team_id,
                connection=connection,
                remote_id=remote_id,
                launched_by=launched_by,
                **values,
            )
            for name, value in preset.get(remote_id, {}).items():
                setattr(session, name, value)
            to_create.append(session)
            results.append(_Upserted(session, True, True, "", None))
            continue
        previous_state, previous_update = current.state, current.update_time
        if is_unchanged(current, remote):
            # Nothing the service says has changed. Only move the poll time forward, which
            # the caller batches; the row itself is not rewritten.
            results.append(_Upserted(current, False, False, previous_state, previous_update))
            continue
        if current.raw == remote.raw and not current.deleted_remotely:
            # Unchanged, but its activities were never read completely: read them again
            # without rewriting the row.
            results.append(_Upserted(current, False, True, previous_state, previous_update, False))
            continue
        for name, value in values.items():
            setattr(current, name, value)
        to_update.append(current)
        results.append(_Upserted(current, False, True, previous_state, previous_update))
        if previous_state != current.state:
            transitions.append(
                SessionTransition(
                    team_id=connection.team_id,
                    session=current,
                    kind=SessionTransition.Kind.STATE_CHANGED,
                    from_state=previous_state,
                    to_state=current.state,
                    observed_at=now,
                )
            )
    with transaction.atomic(savepoint=False):
        if to_create:
            ids: dict[str, int] = {}
            discovered = False
            if is_postgresql():
                # The DISCOVERED transitions of the rows actually inserted go in with them.
                ids = dict(_insert_sessions(to_create, now))
                report.transitions += len(ids)
                discovered = True
            else:
                insert_ignoring_conflicts(Session, to_create)
            inserted = set(ids)
            # A row that collided (a launch inserted the same session a moment ago) keeps
            # what it holds; read its id back. SQLite does not return ids: read them all.
            missing = [s.remote_id for s in to_create if s.remote_id not in ids]
            if missing:
                ids.update(
                    Session.objects.filter(
                        connection=connection, remote_id__in=missing
                    ).values_list("remote_id", "id")
                )
            for result in results:
                if result.created and result.session.remote_id in inserted:
                    result.preset = result.session.remote_id in preset
            for session in to_create:
                session.pk = ids[session.remote_id]
                session._state.adding = False
                if discovered:
                    continue
                transitions.append(
                    SessionTransition(
                        team_id=connection.team_id,
                        session=session,
                        kind=SessionTransition.Kind.DISCOVERED,
                        to_state=session.state,
                        observed_at=now,
                    )
                )
        if to_update:
            Session.objects.bulk_update(to_update, SESSION_FIELDS)
        changed = [u for u in results if u.changed and u.rewritten]
        if changed:
            _write_outputs(changed, by_id, transitions, connection, now)
        record_transitions(transitions, report)
        if to_create and discovered:  # PostgreSQL recorded these discoveries in SQL.
            notify.events_for_discovered([s for s in to_create if s.remote_id in inserted])
    report.sessions_created += len(to_create)
    report.sessions_updated += len(to_update)
    return results


def _insert_sessions(rows: Sequence[Session], now: dt.datetime) -> list[tuple[str, int]]:
    """Insert sessions (PostgreSQL), skipping rows another writer inserted first, with a
    DISCOVERED transition for each row inserted; (remote id, id) of those rows."""
    from django.db import connection as db

    session = Session._meta.db_table
    transition = SessionTransition._meta.db_table
    fields = [f for f in Session._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(f'"{f.column}"' for f in fields)
    with transaction.atomic(savepoint=False), db.cursor() as cursor:
        name = stage(cursor, session, [f.column for f in fields], _model_values(fields, rows))
        cursor.execute(
            f"""
            WITH ins AS (
                INSERT INTO "{session}" ({columns}) SELECT {columns} FROM "{name}"
                ON CONFLICT DO NOTHING RETURNING id, remote_id, team_id, state
            ), discovered AS (
                INSERT INTO "{transition}"
                    (team_id, session_id, kind, from_state, to_state, details, observed_at)
                SELECT team_id, id, %s, '', state, '{{}}'::jsonb, %s FROM ins
            )
            SELECT remote_id, id FROM ins
            """,  # noqa: S608 - table and column names come from model metadata.
            [SessionTransition.Kind.DISCOVERED.value, now],
        )
        return [(remote_id, pk) for remote_id, pk in cursor.fetchall()]


def _model_values(fields: Sequence[Any], rows: Sequence[Session]) -> Iterable[list[Any]]:
    json_fields = {f.attname for f in fields if f.get_internal_type() == "JSONField"}
    names = [f.attname for f in fields]
    for row in rows:
        yield [_json_text(getattr(row, n)) if n in json_fields else getattr(row, n) for n in names]


def _write_outputs(
    changed: list[_Upserted],
    by_id: dict[str, jr.Session],
    transitions: list[SessionTransition],
    connection: JulesConnection,
    now: dt.datetime,
) -> None:
    # A session created just now has no outputs yet: only the others are looked up.
    session_ids = [u.session.pk for u in changed if not u.created]
    before: dict[int, set[str]] = {}
    if session_ids:
        for session_id, kind, url in SessionOutput.objects.filter(
            session_id__in=session_ids
        ).values_list("session_id", "kind", "url"):
            before.setdefault(session_id, set()).add(f"{kind}:{url}")
        SessionOutput.objects.filter(session_id__in=session_ids).delete()
    rows: list[SessionOutput] = []
    for upserted in changed:
        session = upserted.session
        new_rows = output_rows(session, by_id[session.remote_id])
        rows.extend(new_rows)
        if upserted.created:
            continue
        old = before.get(session.pk, set())
        for row in new_rows:
            if f"{row.kind}:{row.url}" in old:
                continue
            kind = (
                SessionTransition.Kind.PR_OPENED
                if row.kind == SessionOutput.Kind.PULL_REQUEST
                else SessionTransition.Kind.OUTPUT_ADDED
            )
            transitions.append(
                SessionTransition(
                    team_id=connection.team_id,
                    session=session,
                    kind=kind,
                    to_state=session.state,
                    details={"output": row.kind, "url": row.url, "title": row.title},
                    observed_at=now,
                )
            )
    insert_ignoring_conflicts(SessionOutput, rows)


AUDITED_TRANSITIONS: dict[str, str] = {
    SessionTransition.Kind.STATE_CHANGED: "sync.state_changed",
    SessionTransition.Kind.PLAN_GENERATED: "sync.plan_generated",
    SessionTransition.Kind.PLAN_APPROVED: "sync.plan_approved",
    SessionTransition.Kind.PR_OPENED: "sync.pr_opened",
    SessionTransition.Kind.OUTPUT_ADDED: "sync.output_added",
    SessionTransition.Kind.FAILED: "sync.failed",
    SessionTransition.Kind.DELETED: "sync.deleted",
}


def record_transitions(transitions: list[SessionTransition], report: SyncReport) -> None:
    """Write transition rows and mirror the meaningful ones into the audit history.

    A session's discovery is not audited: the first sync of a large account would
    otherwise write one audit entry per historical session.
    """
    if not transitions:
        return
    insert_ignoring_conflicts(SessionTransition, transitions)
    notify.events_for_transitions(transitions)
    audit.record_many(
        {
            "action": AUDITED_TRANSITIONS[t.kind],
            "actor_label": "system",
            "team": t.team_id,
            "target": Target("session", str(t.session.pk), t.session.display_title[:300]),
            "details": {
                "remote_id": t.session.remote_id,
                "from_state": t.from_state,
                "to_state": t.to_state,
                **t.details,
            },
            "created_at": t.observed_at,
        }
        for t in transitions
        if t.kind in AUDITED_TRANSITIONS
    )
    report.transitions += len(transitions)


def upsert_remote_session(
    connection: JulesConnection, remote: jr.Session, *, launched_by: Any = None
) -> Session:
    """Write one remote session into the cache (used after a launch from the portal)."""
    report = SyncReport()
    [result] = upsert_sessions(connection, [remote], report=report, launched_by=launched_by)
    session = result.session
    if launched_by is not None and session.launched_by_id is None:
        Session.objects.filter(pk=session.pk, launched_by__isnull=True).update(
            launched_by=launched_by
        )
        session.launched_by = launched_by
    return session


def write_activities(
    connection: JulesConnection,
    fetched: list[tuple[Session, list[jr.Activity]]],
    report: SyncReport,
    first_sight: set[int],
    booked: set[int] | None = None,
) -> None:
    """Insert new activities and advance every fetched session's bookkeeping, in one go.

    Every session in `fetched` was read to the end, so its `activities_read_for` moves to
    its `update_time`; sessions whose read failed are not in `fetched` and are read again.
    `booked`: sessions whose row was just inserted with its bookkeeping (PostgreSQL only).
    """
    if not fetched:
        return
    if is_postgresql():
        apply_activities(prepare_activities(connection, fetched, first_sight, booked), report)
        return
    for session, _ in fetched:
        session.activities_read_for = session.update_time
    # Only sessions that already hold activities can see a re-read one (the pivot is a
    # millisecond early); look up just the stored activities near their pivots.
    resumed = [s for s, items in fetched if items and s.last_activity_at is not None]
    known: set[tuple[int, str]] = set()
    if resumed:
        since = min(s.last_activity_at for s in resumed if s.last_activity_at is not None)
        known = set(
            Activity.objects.filter(
                session_id__in=[s.pk for s in resumed],
                create_time__gte=since - dt.timedelta(seconds=1),
            ).values_list("session_id", "remote_id")
        )
    rows: list[Activity] = []
    transitions: list[SessionTransition] = []
    now = timezone.now()
    for session, items in fetched:
        new = [a for a in items if a.id and (session.pk, a.id[:64]) not in known]
        if not new:
            continue
        for remote in new:
            known.add((session.pk, remote.id[:64]))
            rows.append(activity_row(session.pk, remote))
            if session.pk not in first_sight:
                transition = activity_transition(connection, session, remote, now)
                if transition is not None:
                    transitions.append(transition)
        newest = max(new, key=lambda a: a.create_time or dt.datetime.min.replace(tzinfo=dt.UTC))
        if newest.create_time and (
            session.last_activity_at is None or newest.create_time > session.last_activity_at
        ):
            session.last_activity_at = newest.create_time
            session.last_activity_time_raw = (newest.create_time_raw or "")[:40]
        session.activity_count += len(new)
    with transaction.atomic():
        insert_ignoring_conflicts(Activity, rows)
        update_fields(
            Session,
            [session for session, _ in fetched],
            ["last_activity_at", "last_activity_time_raw", "activity_count", "activities_read_for"],
        )
        record_transitions(transitions, report)
    report.activities_created += len(rows)


# JSON columns travel to COPY as text; compact, and no check for cycles (parsed JSON has
# none).
_json_text = json.JSONEncoder(check_circular=False, separators=(",", ":")).encode
_TRANSITION_KINDS = ("planGenerated", "planApproved", "sessionFailed")


@dataclass
class ActivityBatch:
    """A batch of activities ready for `apply_activities`: plain rows, no model objects."""

    rows: list[tuple[Any, ...]]
    # Sessions read to the end, and the updateTime whose activities that covers.
    session_ids: list[int]
    read_for: list[dt.datetime | None]
    # The transition each activity would record, if it turns out to be new.
    transitions: dict[tuple[int, str], SessionTransition]
    # Rows of sessions inserted by the same transaction (`booked`): nothing can collide
    # with them, so they go straight into the table.
    direct_rows: list[tuple[Any, ...]] = field(default_factory=list)


def prepare_activities(
    connection: JulesConnection,
    fetched: list[tuple[Session, list[jr.Activity]]],
    first_sight: set[int],
    booked: set[int] | None = None,
) -> ActivityBatch:
    """The rows of a batch (pure Python, no query: it runs while the last batch writes).

    Sessions in `booked` already hold their bookkeeping; their rows are not rewritten.
    """
    batch = ActivityBatch([], [], [], {})
    rows = batch.rows
    positions = ACTIVITY_JSON_POSITIONS
    now = timezone.now()
    booked = booked or set()
    for session, items in fetched:
        session.activities_read_for = session.update_time
        if session.pk not in booked:
            batch.session_ids.append(session.pk)
            batch.read_for.append(session.update_time)
        pk = session.pk
        target = batch.direct_rows if pk in booked else rows
        seen: set[str] = set()
        for remote in items:
            if not remote.id:
                continue
            remote_id = remote.id[:64]
            if remote_id in seen:
                continue
            seen.add(remote_id)
            values = list(activity_values(pk, remote))
            for position in positions:
                value = values[position]
                values[position] = _json_text(value) if value else "[]"
            target.append(tuple(values))
            if remote.kind in _TRANSITION_KINDS and pk not in first_sight:
                transition = activity_transition(connection, session, remote, now)
                if transition is not None:
                    batch.transitions[(pk, remote_id)] = transition
    return batch


def apply_activities(batch: ActivityBatch, report: SyncReport) -> None:
    """Write a prepared batch in one transaction (PostgreSQL only).

    The activities of sessions this transaction inserted go straight in by COPY.

    One statement inserts the activities the table lacks (the unique key drops the ones a
    re-read brought again), moves each session's count, newest activity and
    `activities_read_for`, and returns what the transitions need; so a batch costs four
    round trips whatever its size.
    """
    from django.db import connection as db

    activity = Activity._meta.db_table
    session = Session._meta.db_table
    columns = columns_of(Activity, ACTIVITY_FIELDS)
    column_list = ", ".join(f'"{c}"' for c in columns)
    with transaction.atomic(savepoint=False), db.cursor() as cursor:
        if batch.direct_rows:
            with cursor.cursor.copy(f'COPY "{activity}" ({column_list}) FROM STDIN') as copy:
                for row in batch.direct_rows:
                    copy.write_row(row)
        if not batch.rows and not batch.session_ids:
            report.activities_created += len(batch.direct_rows)
            return
        name = stage(cursor, activity, columns, batch.rows)
        cursor.execute(
            f"""
            WITH ins AS (
                INSERT INTO "{activity}" ({column_list}) SELECT {column_list} FROM "{name}"
                ON CONFLICT DO NOTHING
                RETURNING session_id, remote_id, kind, create_time, create_time_raw
            ), newest AS (
                SELECT DISTINCT ON (session_id) session_id, create_time, create_time_raw,
                       count(*) OVER (PARTITION BY session_id) AS added
                FROM ins ORDER BY session_id, create_time DESC NULLS LAST
            ), books AS (
                SELECT * FROM unnest(%s::bigint[], %s::timestamptz[]) AS b(id, read_for)
            ), bumped AS (
                UPDATE "{session}" AS s SET
                    activities_read_for = books.read_for,
                    activity_count = s.activity_count + COALESCE(newest.added, 0),
                    last_activity_at = CASE
                        WHEN newest.create_time IS NOT NULL AND (
                            s.last_activity_at IS NULL OR newest.create_time > s.last_activity_at
                        ) THEN newest.create_time ELSE s.last_activity_at END,
                    last_activity_time_raw = CASE
                        WHEN newest.create_time IS NOT NULL AND (
                            s.last_activity_at IS NULL OR newest.create_time > s.last_activity_at
                        ) THEN newest.create_time_raw ELSE s.last_activity_time_raw END
                FROM books LEFT JOIN newest ON newest.session_id = books.id
                WHERE s.id = books.id
            )
            SELECT count(*),
                   array_agg(session_id) FILTER (WHERE kind = ANY(%s::text[])),
                   array_agg(remote_id) FILTER (WHERE kind = ANY(%s::text[]))
            FROM ins
            """,  # noqa: S608 - table and column names come from model metadata.
            [batch.session_ids, batch.read_for, list(_TRANSITION_KINDS), list(_TRANSITION_KINDS)],
        )
        added, transition_sessions, transition_ids = cursor.fetchone()
        transitions = [
            batch.transitions[key]
            for key in zip(transition_sessions or [], transition_ids or [], strict=True)
            if key in batch.transitions
        ]
        record_transitions(transitions, report)
    report.activities_created += added + len(batch.direct_rows)


def bookkeeping(remote: jr.Session, items: list[jr.Activity]) -> dict[str, Any]:
    """A new session's activity fields once `items` (all its activities) are written."""
    ids = {a.id[:64] for a in items if a.id}
    newest = max(
        (a for a in items if a.id and a.create_time is not None),
        key=lambda a: a.create_time,  # type: ignore[arg-type,return-value]
        default=None,
    )
    return {
        "activity_count": len(ids),
        "last_activity_at": newest.create_time if newest else None,
        "last_activity_time_raw": (newest.create_time_raw or "")[:40] if newest else "",
        "activities_read_for": remote.update_time,
    }


def write_page(
    connection: JulesConnection,
    remotes: Sequence[jr.Session],
    existing: dict[str, Session],
    fetched: dict[str, list[jr.Activity]],
    *,
    report: SyncReport,
    repos: dict[str, str] | None = None,
) -> list[_Upserted]:
    """A page of listed sessions and the activities read for them, in one transaction.

    On PostgreSQL a new session's row is inserted with its activity bookkeeping, so each
    row is written once (a second write would touch every index of the table again).
    """
    preset: dict[str, dict[str, Any]] = {}
    if is_postgresql():
        for remote in remotes:
            if remote.id and remote.id not in existing and remote.id in fetched:
                preset[remote.id] = bookkeeping(remote, fetched[remote.id])
    with transaction.atomic():
        results = upsert_sessions(
            connection, remotes, report=report, repos=repos, existing=existing, preset=preset
        )
        pairs = [
            (r.session, fetched[r.session.remote_id])
            for r in results
            if r.changed and r.session.remote_id in fetched
        ]
        write_activities(
            connection,
            pairs,
            report,
            {r.session.pk for r in results if r.created},
            {r.session.pk for r in results if r.preset},
        )
    return results


def activity_transition(
    connection: JulesConnection, session: Session, remote: jr.Activity, now: dt.datetime
) -> SessionTransition | None:
    kinds = {
        "planGenerated": SessionTransition.Kind.PLAN_GENERATED,
        "planApproved": SessionTransition.Kind.PLAN_APPROVED,
        "sessionFailed": SessionTransition.Kind.FAILED,
    }
    kind = kinds.get(remote.kind)
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


def reschedule(sessions: Sequence[Session]) -> None:
    """Move unchanged sessions' next reads forward by their cadence."""
    if not sessions:
        return
    now = timezone.now()
    for session in sessions:
        session.next_poll_at = next_poll_for(session.state, session.update_time, now)
    Session.objects.bulk_update(sessions, ["next_poll_at"])


def missing_sessions(connection: JulesConnection, seen_ids: set[str]) -> list[Session]:
    """Cached sessions that a complete listing did not return."""
    # Compared in Python: a large NOT IN list would exceed database parameter limits. Only
    # ids travel until the missing ones are known (usually none of them).
    missing = [
        pk
        for pk, remote_id in Session.objects.filter(connection=connection, deleted_remotely=False)
        .values_list("id", "remote_id")
        .iterator(chunk_size=5000)
        if remote_id not in seen_ids
    ]
    found: list[Session] = []
    for start in range(0, len(missing), 500):
        found.extend(
            Session.objects.filter(pk__in=missing[start : start + 500]).only(
                "id", "remote_id", "state", "update_time", "team_id", "title", "prompt"
            )
        )
    return found


def mark_deleted(connection: JulesConnection, session_ids: Iterable[int]) -> int:
    ids = list(session_ids)
    if not ids:
        return 0
    now = timezone.now()
    report = SyncReport()
    with transaction.atomic():
        sessions = list(Session.objects.filter(pk__in=ids, deleted_remotely=False))
        Session.objects.filter(pk__in=[s.pk for s in sessions]).update(
            deleted_remotely=True, next_poll_at=None
        )
        record_transitions(
            [
                SessionTransition(
                    team_id=connection.team_id,
                    session=s,
                    kind=SessionTransition.Kind.DELETED,
                    from_state=s.state,
                    observed_at=now,
                )
                for s in sessions
            ],
            report,
        )
    return len(sessions)


def write_sources(connection: JulesConnection, client: JulesClient) -> int:
    """Replace the connection's sources with what the account lists now."""
    now = timezone.now()
    seen: set[str] = set()
    existing = {s.name: s for s in Source.objects.filter(connection=connection)}
    to_create: list[Source] = []
    to_update: list[Source] = []
    for remote in client.iter_sources(page_size=100):
        if not remote.name or remote.name in seen:
            continue
        seen.add(remote.name)
        values = {
            "source_id": (remote.id or "")[:300],
            "owner": (remote.owner or "")[:200],
            "repo": (remote.repo or "")[:200],
            "is_private": bool(remote.is_private),
            "default_branch": (remote.default_branch or "")[:250],
            "branches": list(remote.branches),
            "raw": remote.raw,
        }
        current = existing.get(remote.name)
        if current is None:
            to_create.append(
                Source(connection=connection, name=remote.name[:300], synced_at=now, **values)
            )
        elif current.raw != remote.raw:
            for key, value in values.items():
                setattr(current, key, value)
            current.synced_at = now
            to_update.append(current)
    with transaction.atomic():
        Source.objects.bulk_create(to_create, ignore_conflicts=True)
        if to_update:
            Source.objects.bulk_update(
                to_update,
                [
                    "source_id",
                    "owner",
                    "repo",
                    "is_private",
                    "default_branch",
                    "branches",
                    "raw",
                    "synced_at",
                ],
            )
        # Repositories disconnected from the account disappear from the launch form.
        gone = [name for name in existing if name not in seen]
        if gone:
            Source.objects.filter(connection=connection, name__in=gone).delete()
        JulesConnection.objects.filter(pk=connection.pk).update(last_sources_sync_at=now)
    return len(seen)
