"""Idempotent bulk writes of remote data into the cache, and the transitions they observe."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from jules import resources as jr
from jules.client import JulesClient
from sessions_app.analytics import rollup
from sessions_app.audit import chain as audit
from sessions_app.audit.actions import AuditAction
from sessions_app.audit.chain import Target
from sessions_app.models import (
    JulesConnection,
    Session,
    SessionOutput,
    SessionTransition,
    Source,
)
from sessions_app.notifications import events as notify
from sessions_app.search import documents as search_index
from sessions_app.sync.mapping import (
    SESSION_FIELDS,
    is_same_session,
    next_poll_for,
    output_rows,
    session_values,
    tombstone_id,
)
from sessions_app.sync.store import Fetched, SyncStore, store_for

logger = logging.getLogger(__name__)


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


def is_known(existing: dict[str, Session], remote: jr.Session) -> bool:
    """Whether the page's cached rows hold this very session (not an earlier holder of
    its id)."""
    current = existing.get(remote.id or "")
    return current is not None and is_same_session(current, remote)


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
    store: SyncStore,
    report: SyncReport,
    repos: dict[str, str] | None = None,
    launched_by: Any = None,
    existing: dict[str, Session] | None = None,
    preset: dict[str, dict[str, Any]] | None = None,
    facts: bool = True,
) -> list[_Upserted]:
    """Write a page of remote sessions; unchanged ones cost one read and no write.

    `existing`: the page's cached rows, when the caller already read them. `preset`: field
    values (the activity bookkeeping) for sessions this call creates, by remote id; they
    are written with the row only where the insert succeeds (`_Upserted.preset`).
    `facts`: refresh the changed sessions' analytics rollup here (False when the caller
    writes their activities next and refreshes it then).
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
    superseded: list[Session] = []
    for remote_id, remote in by_id.items():
        values = session_values(remote, now, repos)
        current = existing.get(remote_id)
        if current is not None and not is_same_session(current, remote):
            # The id now names another session (a simulator reset, say): the old row keeps
            # its history under a tombstone id, and the new session gets a row of its own.
            superseded.append(current)
            current = None
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
    inserted: set[str] = set()
    with transaction.atomic(savepoint=False):
        if superseded:
            transitions.extend(_supersede(connection, superseded, now))
        if to_create:
            # The DISCOVERED transitions of the rows actually inserted go in with them.
            ids = store.insert_sessions(to_create, now)
            report.transitions += len(ids)
            inserted = set(ids)
            # A row that collided (a launch inserted the same session a moment ago) keeps
            # what it holds; read its id back.
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
        if to_update:
            Session.objects.bulk_update(to_update, SESSION_FIELDS)
        changed = [u for u in results if u.changed and u.rewritten]
        if changed:
            _write_outputs(store, changed, by_id, transitions, connection, now)
        record_transitions(store, transitions, report)
        if to_create:
            # Both stores record the DISCOVERED transitions of the rows they insert.
            notify.events_for_discovered([s for s in to_create if s.remote_id in inserted])
        if facts:
            rollup.refresh_facts(u.session.pk for u in results if u.changed)
    # A row that collided was inserted by someone else: not counted as created here.
    report.sessions_created += len(inserted)
    report.sessions_updated += len(to_update)
    return results


def _supersede(
    connection: JulesConnection, rows: list[Session], now: dt.datetime
) -> list[SessionTransition]:
    """Move rows whose remote id another session now holds out of its way, keeping their
    activities, outputs and launcher; a DELETED transition says what happened."""
    taken = set(
        Session.objects.filter(connection=connection, remote_id__contains="~").values_list(
            "remote_id", flat=True
        )
    )
    transitions = []
    for row in rows:
        original = row.remote_id
        n = 1
        while (tombstone := tombstone_id(original, n)) in taken:
            n += 1
        taken.add(tombstone)
        Session.objects.filter(pk=row.pk).update(
            remote_id=tombstone, deleted_remotely=True, next_poll_at=None
        )
        row.remote_id, row.deleted_remotely, row.next_poll_at = tombstone, True, None
        logger.warning(
            "Session %s of connection %s was replaced by another session with its id; "
            "the old row is kept as %s",
            original,
            connection.pk,
            tombstone,
        )
        transitions.append(
            SessionTransition(
                team_id=connection.team_id,
                session=row,
                kind=SessionTransition.Kind.DELETED,
                from_state=row.state,
                to_state=row.state,
                details={
                    "reason": "superseded",
                    "remote_id": original,
                    "kept_as": tombstone,
                    "note": (
                        "Jules now uses this id for a different session (another create "
                        "time or prompt); this row keeps the earlier session's history."
                    ),
                },
                observed_at=now,
            )
        )
    rollup.refresh_facts(row.pk for row in rows)
    return transitions


def _write_outputs(
    store: SyncStore,
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
    store.insert_rows(SessionOutput, rows)


AUDITED_TRANSITIONS: dict[str, str] = {
    SessionTransition.Kind.STATE_CHANGED: AuditAction.SYNC_STATE_CHANGED,
    SessionTransition.Kind.PLAN_GENERATED: AuditAction.SYNC_PLAN_GENERATED,
    SessionTransition.Kind.PLAN_APPROVED: AuditAction.SYNC_PLAN_APPROVED,
    SessionTransition.Kind.PR_OPENED: AuditAction.SYNC_PR_OPENED,
    SessionTransition.Kind.OUTPUT_ADDED: AuditAction.SYNC_OUTPUT_ADDED,
    SessionTransition.Kind.FAILED: AuditAction.SYNC_FAILED,
    SessionTransition.Kind.DELETED: AuditAction.SYNC_DELETED,
}


def record_transitions(
    store: SyncStore, transitions: list[SessionTransition], report: SyncReport
) -> None:
    """Write transition rows and mirror the meaningful ones into the audit history.

    A session's discovery is not audited: the first sync of a large account would
    otherwise write one audit entry per historical session.
    """
    if not transitions:
        return
    store.insert_rows(SessionTransition, transitions)
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
    [result] = upsert_sessions(
        connection, [remote], store=store_for(), report=report, launched_by=launched_by
    )
    session = result.session
    search_index.index_after_sync([session.pk])
    if launched_by is not None and session.launched_by_id is None:
        Session.objects.filter(pk=session.pk, launched_by__isnull=True).update(
            launched_by=launched_by
        )
        session.launched_by = launched_by
        rollup.refresh_facts([session.pk])
    return session


def write_activities(
    store: SyncStore,
    connection: JulesConnection,
    fetched: Fetched,
    report: SyncReport,
    first_sight: set[int] | None = None,
    booked: set[int] | None = None,
    *,
    index: bool = True,
) -> None:
    """Insert new activities and advance every fetched session's bookkeeping, in one go.

    Every session in `fetched` was read to the end, so its `activities_read_for` moves to
    its `update_time`; sessions whose read failed are not in `fetched` and are read again.
    `first_sight`: sessions created by this pass (their history records no transitions);
    `booked`: sessions whose row was just inserted with its bookkeeping.
    """
    if fetched:
        batch = store.prepare_activities(connection, fetched, first_sight or set(), booked or set())
        apply_activities(store, batch, report, index=index)


def apply_activities(
    store: SyncStore, batch: Any, report: SyncReport, *, index: bool = True
) -> None:
    """Write a batch that `store.prepare_activities` made, with its transitions (and,
    with `index`, the search documents of its sessions: docs/search.md)."""
    with transaction.atomic(savepoint=False):
        added, transitions = store.apply_activities(batch)
        record_transitions(store, transitions, report)
        if index:
            search_index.index_after_sync(search_index.batch_session_ids(batch))
        rollup.refresh_facts(rollup.batch_session_ids(batch))
    report.activities_created += added


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
    store: SyncStore,
    report: SyncReport,
    repos: dict[str, str] | None = None,
) -> list[_Upserted]:
    """A page of listed sessions and the activities read for them, in one transaction.

    A new session's row is inserted with its activity bookkeeping, so each row is written
    once (on PostgreSQL a second write would touch every index of the table again).
    """
    preset: dict[str, dict[str, Any]] = {}
    for remote in remotes:
        if remote.id and remote.id in fetched and not is_known(existing, remote):
            preset[remote.id] = bookkeeping(remote, fetched[remote.id])
    with transaction.atomic():
        results = upsert_sessions(
            connection,
            remotes,
            store=store,
            report=report,
            repos=repos,
            existing=existing,
            preset=preset,
            facts=False,
        )
        pairs = [
            (r.session, fetched[r.session.remote_id])
            for r in results
            if r.changed and r.session.remote_id in fetched
        ]
        write_activities(
            store,
            connection,
            pairs,
            report,
            {r.session.pk for r in results if r.created},
            {r.session.pk for r in results if r.preset},
            index=False,
        )
        # One search document write per page, in its transaction (docs/search.md).
        search_index.index_written_page(results, remotes, fetched)
        # Sessions whose activities were written above had their rollup refreshed then;
        # those inserted with all their activities get theirs from memory.
        booked = [r.session for r in results if r.preset]
        by_id = {r.id: r for r in remotes if r.id}
        rollup.facts_for_new((s, by_id[s.remote_id], fetched[s.remote_id]) for s in booked)
        done = {s.pk for s in booked} | {s.pk for s, _ in pairs}
        rollup.refresh_facts(
            r.session.pk for r in results if r.changed and r.session.pk not in done
        )
    return results


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


def mark_deleted(store: SyncStore, connection: JulesConnection, session_ids: Iterable[int]) -> int:
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
            store,
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
        rollup.refresh_facts(s.pk for s in sessions)
    return len(sessions)


SOURCE_NAME_LENGTH = Source._meta.get_field("name").max_length or 300


def _list_sources(client: JulesClient, errors: list[str]) -> dict[str, jr.Source]:
    listed: dict[str, jr.Source] = {}
    for remote in client.iter_sources(page_size=100):
        if not remote.name or remote.name in listed:
            continue
        if len(remote.name) > SOURCE_NAME_LENGTH:
            # Truncated, it would never match its row again and flap every pass.
            errors.append(f"source {remote.name[:80]!r}…: name longer than {SOURCE_NAME_LENGTH}")
            continue
        listed[remote.name] = remote
    return listed


def write_sources(
    connection: JulesConnection, client: JulesClient, errors: list[str] | None = None
) -> int:
    """Replace the connection's sources with what the account lists now.

    A source missing from the listing is deleted only when a second listing lacks it too,
    so one empty or cut-short answer never wipes the team's repositories.
    """
    errors = errors if errors is not None else []
    now = timezone.now()
    existing = {s.name: s for s in Source.objects.filter(connection=connection)}
    listed = _list_sources(client, errors)
    if any(name not in listed for name in existing):
        for name, remote in _list_sources(client, []).items():
            listed.setdefault(name, remote)
    to_create: list[Source] = []
    to_update: list[Source] = []
    for name, remote in listed.items():
        values = {
            "source_id": (remote.id or "")[:300],
            "owner": (remote.owner or "")[:200],
            "repo": (remote.repo or "")[:200],
            "is_private": bool(remote.is_private),
            "default_branch": (remote.default_branch or "")[:250],
            "branches": list(remote.branches),
            "raw": remote.raw,
        }
        current = existing.get(name)
        if current is None:
            to_create.append(Source(connection=connection, name=name, synced_at=now, **values))
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
        gone = [name for name in existing if name not in listed]
        if gone:
            Source.objects.filter(connection=connection, name__in=gone).delete()
        JulesConnection.objects.filter(pk=connection.pk).update(last_sources_sync_at=now)
    return len(listed)
