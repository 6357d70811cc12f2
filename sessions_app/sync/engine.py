"""The sync engine: reconcile what the Jules API says into the cache tables.

One pass over a connection (`sync_connection`):

1. claims the connection by conditional update, so two workers never sync it at once;
2. lists sessions newest first: every pass reads the first page (the changes pass: each
   listed session's updateTime says whether it changed), every SYNC_LIST_SECONDS it goes
   on until past the newest known createTime, and on a full pass to the end (archived
   included), which also catches revived old sessions and notices deletions;
3. re-reads the sessions whose own cadence is due and that the listing did not show (fast
   while they can move, slowly for a while after they rest);
4. reads new activities incrementally with the `create_time >` filter for every session
   whose updateTime moved, several requests in flight, and writes them in bulk;
5. refreshes sources when due, and records every observed change as a transition.

Every write is an idempotent upsert keyed on the remote ids: a second pass over unchanged
data writes nothing. The pages only ever read the tables this module writes.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any

from django.conf import settings
from django.db.models import Max, Q
from django.utils import timezone

from jules import errors as jerrors
from jules import resources as jr
from jules.client import JulesClient
from sessions_app.connections.client import ConnectionUnusable, describe_error, sync_client
from sessions_app.models import (
    JulesConnection,
    Session,
    Source,
)
from sessions_app.models.jules import SyncStatus
from sessions_app.notifications import events as notify
from sessions_app.sync.mapping import usable_activities, usable_sessions
from sessions_app.sync.pipeline import Writer
from sessions_app.sync.store import SyncStore, store_for
from sessions_app.sync.writers import (
    SyncReport,
    apply_activities,
    existing_sessions,
    is_known,
    is_unchanged,
    mark_deleted,
    missing_sessions,
    reschedule,
    upsert_sessions,
    write_page,
    write_sources,
)

logger = logging.getLogger(__name__)

# How long a claim lasts before another worker may take over a connection whose worker
# died; a live sync extends it with every progress report.
CLAIM_SECONDS = 600
# Sessions per batch of activity reads and bulk writes.
BATCH = 50
# Writer threads of a pass (each with its own database connection): with two, one page's
# waits on PostgreSQL overlap the next page's preparation (docs/performance.md).
WRITE_THREADS = 2
# Seconds by which a connection may be early for its next pass (`due_connections`); less
# than the beat's `schedule-syncs` cadence (julesweb/celery.py).
SCHEDULE_SLACK = 0.5


ProgressCallback = Callable[[str, int, int], None]


def _pivot(session: Session) -> str | None:
    """The incremental filter's pivot, a little before the newest stored activity.

    The filter is exclusive, so an activity sharing the newest one's timestamp could be
    missed; a millisecond earlier pivot re-reads it, and the unique key drops duplicates.
    """
    if session.last_activity_at is None:
        return None
    earlier = session.last_activity_at - dt.timedelta(milliseconds=1)
    return earlier.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def pool_size(client: JulesClient) -> int:
    """Threads for a pass's reads: up to the client's ceiling of requests in flight, whose
    adaptive limit (jules/inflight.py) gates them; without one, the fixed concurrency."""
    if client.inflight is not None:
        return client.inflight.ceiling
    return max(1, settings.JULES_SYNC_CONCURRENCY)


def _fetch_activities(
    client: JulesClient, session: Session, errors: list[str]
) -> list[jr.Activity]:
    items = list(
        client.iter_activities(session.remote_id, page_size=100, create_time_after=_pivot(session))
    )
    return usable_activities(session.remote_id, items, errors)


def sync_activities(
    client: JulesClient,
    connection: JulesConnection,
    sessions: Sequence[Session],
    *,
    store: SyncStore,
    report: SyncReport,
    workers: int = 4,
    writer: Writer | None = None,
) -> None:
    """Read new activities for the sessions given, several requests in flight.

    With a `writer`, each batch's rows are prepared here and written by the writer while
    the next batches download; without one, each batch is written before the next.
    """
    if writer is None:
        with Writer(threaded=False) as inline:
            sync_activities(
                client,
                connection,
                sessions,
                store=store,
                report=report,
                workers=workers,
                writer=inline,
            )
        inline.merge_into(report)
        return
    batches = [sessions[i : i + BATCH] for i in range(0, len(sessions), BATCH)]
    if workers <= 1:
        # One request in flight: no pool (and no thread handoff per request).
        for batch in batches:
            by_id = _fetch_many(client, None, batch, report)
            rows = [(s, by_id[s.remote_id]) for s in batch if s.remote_id in by_id]
            if rows:
                prepared = store.prepare_activities(connection, rows, set(), set())
                writer.submit(apply_activities, store, prepared, writer.new_report())
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:

        def submit(batch: Sequence[Session]) -> list[tuple[Session, Any]]:
            return [(s, pool.submit(_fetch_activities, client, s, report.errors)) for s in batch]

        # Pipelined: the next batch downloads while this one is written.
        pending = submit(batches[0]) if batches else []
        for index in range(len(batches)):
            current = pending
            pending = submit(batches[index + 1]) if index + 1 < len(batches) else []
            fetched: list[tuple[Session, list[jr.Activity]]] = []
            for session, future in current:
                try:
                    fetched.append((session, future.result()))
                except jerrors.NotFoundError:
                    # Too soon after its create; the next pass reads them:
                    # docs/jules-api.md#activities-404-after-create
                    continue
                except (jerrors.AuthError, jerrors.PermissionDeniedError):
                    for _, other in pending:
                        other.cancel()
                    raise
                except jerrors.JulesError as exc:
                    report.errors.append(f"session {session.remote_id}: {describe_error(exc)}")
            if not fetched:
                continue
            batch = store.prepare_activities(connection, fetched, set(), set())
            writer.submit(apply_activities, store, batch, writer.new_report())


def claim(connection_id: int, seconds: int = CLAIM_SECONDS) -> str | None:
    """Take the connection's sync claim; None when another worker holds it."""
    now = timezone.now()
    token = uuid.uuid4().hex
    claimed = (
        JulesConnection.objects.filter(pk=connection_id, enabled=True)
        .filter(Q(sync_claimed_until__isnull=True) | Q(sync_claimed_until__lt=now))
        .update(
            sync_claimed_until=now + dt.timedelta(seconds=seconds),
            sync_claim_token=token,
        )
    )
    return token if claimed == 1 else None


def _progress(
    connection_id: int,
    token: str,
    phase: str,
    done: int,
    total: int,
    callback: ProgressCallback | None,
) -> None:
    JulesConnection.objects.filter(pk=connection_id, sync_claim_token=token).update(
        sync_phase=phase,
        sync_done=done,
        sync_total=total,
        sync_claimed_until=timezone.now() + dt.timedelta(seconds=CLAIM_SECONDS),
    )
    if callback is not None:
        callback(phase, done, total)


def _list_pages(client: JulesClient, *, archived: bool | None) -> Iterator[list[jr.Session]]:
    token: str | None = None
    while True:
        page = client.list_sessions(page_size=100, page_token=token, archived=archived)
        yield page.items
        token = page.next_page_token
        if not token:
            return


def sync_connection(
    connection_id: int,
    *,
    full: bool = False,
    client: JulesClient | None = None,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
    store: SyncStore | None = None,
) -> SyncReport:
    """One sync pass over a connection. Returns what it did; never raises for Jules errors.

    `store`: where the pass writes; by default the one for the database (`store_for`).
    """
    report = SyncReport()
    token = claim(connection_id)
    if token is None:
        report.skipped = True
        return report
    connection = JulesConnection.objects.select_related("team").get(pk=connection_id)
    now = timezone.now()
    JulesConnection.objects.filter(pk=connection_id).update(
        sync_status=SyncStatus.SYNCING
        if connection.last_success_at is None
        else connection.sync_status,
        last_sync_started_at=now,
        sync_phase="starting",
        sync_done=0,
        sync_total=0,
    )
    full_pass = False
    try:
        client = client or sync_client(connection)
        workers = workers or pool_size(client)
        full_pass = _run_pass(
            client,
            connection,
            token,
            store or store_for(),
            full=full,
            report=report,
            progress=progress,
            workers=workers,
        )
    except (jerrors.AuthError, jerrors.PermissionDeniedError, ConnectionUnusable) as exc:
        _fail(connection_id, token, SyncStatus.BROKEN, exc, report)
        notify.connection_broken(connection_id, describe_error(exc))
        return report
    except jerrors.JulesError as exc:
        _fail(connection_id, token, SyncStatus.ERROR, exc, report)
        return report
    except Exception as exc:
        _fail(connection_id, token, SyncStatus.ERROR, exc, report)
        logger.exception("Sync of connection %s failed unexpectedly", connection_id)
        raise
    finally:
        report.requests = getattr(client, "request_count", 0)
    _finish(connection_id, token, status=SyncStatus.OK, error="", full=full_pass)
    # Records skipped or failed on their own, each named; the pass itself went through.
    for error in report.errors[:20]:
        logger.warning("Sync of connection %s: %s", connection_id, error)
    return report


def _fail(
    connection_id: int, token: str, status: str, exc: BaseException, report: SyncReport
) -> None:
    message = describe_error(exc)
    _finish(connection_id, token, status=status, error=message)
    report.errors.append(message)
    logger.warning("Sync of connection %s failed: %s", connection_id, exc.__class__.__name__)


def _due(now: dt.datetime, last: dt.datetime | None, seconds: int) -> bool:
    return last is None or now - last >= dt.timedelta(seconds=seconds)


def _run_pass(
    client: JulesClient,
    connection: JulesConnection,
    token: str,
    store: SyncStore,
    *,
    full: bool,
    report: SyncReport,
    progress: ProgressCallback | None,
    workers: int,
) -> bool:
    """Run the phases that are due; return whether this was a full pass."""
    now = timezone.now()
    full = full or _due(now, connection.last_full_sync_at, settings.SYNC_FULL_SECONDS)
    list_due = full or _due(now, connection.last_list_at, settings.SYNC_LIST_SECONDS)
    # Between the listings, the changes pass reads the first page only: the list items are
    # the sessions themselves, updateTime included (docs/jules-api.md#finding-changes).
    changes_only = not list_due and settings.SYNC_CHANGES_SECONDS > 0
    if full or _due(now, connection.last_sources_sync_at, settings.SYNC_SOURCES_SECONDS):
        _progress(connection.pk, token, "sources", 0, 0, progress)
        report.sources = write_sources(connection, client, report.errors)
    repos = {s.name: s.full_name for s in Source.objects.filter(connection=connection)}

    needs_activities: list[int] = []
    seen_ids: set[str] = set()
    # Writes go to the writer (threads of their own on PostgreSQL), so each page's rows
    # are written while the next pages and activities download; what they count is merged
    # into the report at the end. Pages and activity batches hold different sessions, so
    # two may be written at once.
    with Writer(threaded=store.can_thread(), threads=WRITE_THREADS) as writer:
        if list_due or changes_only:
            _list_and_read(
                client,
                connection,
                token,
                store,
                full,
                report,
                repos,
                seen_ids,
                progress,
                workers,
                writer,
                max_pages=1 if changes_only else None,
            )
        if list_due:
            JulesConnection.objects.filter(pk=connection.pk).update(last_list_at=timezone.now())
            if full:
                # A session the listing lacks is deleted only when a GET confirms it: an
                # empty or cut-short listing (a fault) must never delete the team's history.
                missing = missing_sessions(connection, seen_ids)
                if missing:
                    _refresh_due(
                        client, connection, store, missing, report, repos, needs_activities, workers
                    )

        # Sessions due on their own cadence. Those the listing just read (written if they
        # changed) are only rescheduled; deeper ones are read one by one.
        due = list(
            Session.objects.filter(
                connection=connection, deleted_remotely=False, next_poll_at__lte=timezone.now()
            )
            .only("id", "remote_id", "state", "update_time", "next_poll_at")
            .order_by("next_poll_at")[:500]
        )
        reschedule([s for s in due if s.remote_id in seen_ids])
        to_read = [s for s in due if s.remote_id not in seen_ids]
        if to_read:
            _refresh_due(
                client, connection, store, to_read, report, repos, needs_activities, workers
            )

        _read_activities(
            client,
            connection,
            token,
            store,
            needs_activities,
            report,
            progress,
            workers,
            writer,
        )
    writer.merge_into(report)
    return full


def _list_and_read(
    client: JulesClient,
    connection: JulesConnection,
    token: str,
    store: SyncStore,
    full: bool,
    report: SyncReport,
    repos: dict[str, str],
    seen_ids: set[str],
    progress: ProgressCallback | None,
    workers: int,
    writer: Writer,
    *,
    max_pages: int | None = None,
) -> None:
    """List sessions page by page, with the activities of each page's new and changed ones.

    For each page: read its cached rows, download the activities of the sessions that
    changed (several requests in flight), then hand the page to the writer, which writes
    the sessions and their activities in one transaction while the next page downloads.
    `max_pages`: stop after that many pages (the changes pass reads one).
    """
    newest_known = Session.objects.filter(connection=connection).aggregate(m=Max("create_time"))[
        "m"
    ]
    written: deque[Future[Any]] = deque()
    # One request in flight needs no pool (and no thread handoff per request).
    with ThreadPoolExecutor(max_workers=workers) if workers > 1 else nullcontext() as pool:
        for number, page in enumerate(_list_pages(client, archived=None if full else False), 1):
            report.sessions_seen += len(page)
            items = usable_sessions(page, report.errors)
            seen_ids.update(r.id for r in items if r.id)
            existing = existing_sessions(connection, items)
            # A new session (or a new holder of a known id) reads its activities from the
            # start; a changed one from its pivot.
            to_read = [
                existing[r.id] if is_known(existing, r) else Session(remote_id=r.id)
                for r in items
                if r.id and (not is_known(existing, r) or not is_unchanged(existing[r.id], r))
            ]
            fetched = _fetch_many(client, pool, to_read, report)
            written.append(
                writer.call(
                    write_page,
                    connection,
                    items,
                    existing,
                    fetched,
                    store=store,
                    report=writer.new_report(),
                    repos=repos,
                )
            )
            # As many pages ahead as there are writer threads, so each has one to write.
            while len(written) > max(1, writer.threads):
                written.popleft().result()
            _progress(connection.pk, token, "sessions", report.sessions_seen, 0, progress)
            # Newest first: once a whole page is older than the newest session already
            # known, the rest is known too; the due re-reads and full passes cover changes.
            if (
                not full
                and newest_known
                and items
                and all(s.create_time is not None and s.create_time < newest_known for s in items)
            ) or (max_pages is not None and number >= max_pages):
                break
    while written:
        written.popleft().result()


def _fetch_many(
    client: JulesClient,
    pool: ThreadPoolExecutor | None,
    sessions: Sequence[Session],
    report: SyncReport,
) -> dict[str, list[jr.Activity]]:
    """The activities of each session (newer than its pivot); failed ones are left out."""
    fetched: dict[str, list[jr.Activity]] = {}
    if pool is None:
        # One request in flight: no thread handoff per request.
        for session in sessions:
            try:
                fetched[session.remote_id] = _fetch_activities(client, session, report.errors)
            except jerrors.NotFoundError:
                continue
            except (jerrors.AuthError, jerrors.PermissionDeniedError):
                raise
            except jerrors.JulesError as exc:
                report.errors.append(f"session {session.remote_id}: {describe_error(exc)}")
        return fetched
    futures = [(s, pool.submit(_fetch_activities, client, s, report.errors)) for s in sessions]
    try:
        for session, future in futures:
            try:
                fetched[session.remote_id] = future.result()
            except jerrors.NotFoundError:
                # Too soon after its create; its bookkeeping stays behind and the next pass
                # reads them: docs/jules-api.md#activities-404-after-create
                continue
            except (jerrors.AuthError, jerrors.PermissionDeniedError):
                raise
            except jerrors.JulesError as exc:
                report.errors.append(f"session {session.remote_id}: {describe_error(exc)}")
    except BaseException:
        for _, future in futures:
            future.cancel()
        raise
    return fetched


def _read_activities(
    client: JulesClient,
    connection: JulesConnection,
    token: str,
    store: SyncStore,
    needs_activities: list[int],
    report: SyncReport,
    progress: ProgressCallback | None,
    workers: int,
    writer: Writer,
) -> None:
    total = len(needs_activities)
    for start in range(0, total, BATCH * 4):
        chunk_ids = needs_activities[start : start + BATCH * 4]
        sessions = list(
            Session.objects.filter(pk__in=chunk_ids).only(
                "id",
                "remote_id",
                "team_id",
                "state",
                "title",
                "prompt",
                "last_activity_at",
                "last_activity_time_raw",
                "activity_count",
                "update_time",
                "activities_read_for",
            )
        )
        sync_activities(
            client,
            connection,
            sessions,
            store=store,
            report=report,
            workers=workers,
            writer=writer,
        )
        _progress(
            connection.pk, token, "activities", min(total, start + len(chunk_ids)), total, progress
        )


def _refresh_due(
    client: JulesClient,
    connection: JulesConnection,
    store: SyncStore,
    due: list[Session],
    report: SyncReport,
    repos: dict[str, str],
    needs_activities: list[int],
    workers: int,
) -> None:
    def get(session: Session) -> jr.Session | None:
        try:
            return client.get_session(session.remote_id)
        except jerrors.NotFoundError:
            return None

    fetched: list[jr.Session] = []
    gone: list[Session] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [(s, pool.submit(get, s)) for s in due]
        for session, future in futures:
            try:
                remote = future.result()
            except (jerrors.AuthError, jerrors.PermissionDeniedError):
                raise
            except jerrors.JulesError as exc:
                report.errors.append(f"session {session.remote_id}: {describe_error(exc)}")
                continue
            if remote is None:
                gone.append(session)
            else:
                fetched.append(remote)
    fetched = usable_sessions(fetched, report.errors)
    for start in range(0, len(fetched), 100):
        results = upsert_sessions(
            connection, fetched[start : start + 100], store=store, report=report, repos=repos
        )
        needs_activities.extend(r.session.pk for r in results if r.changed)
        reschedule([r.session for r in results if not r.changed])
    if gone:
        report.sessions_deleted += mark_deleted(store, connection, [s.pk for s in gone])


def _finish(connection_id: int, token: str, *, status: str, error: str, full: bool = False) -> None:
    now = timezone.now()
    updates: dict[str, Any] = {
        "sync_claimed_until": None,
        "sync_claim_token": "",
        "sync_phase": "",
    }
    if status == SyncStatus.OK:
        updates.update(
            sync_status=SyncStatus.OK, last_success_at=now, last_error="", consecutive_failures=0
        )
        if full:
            updates["last_full_sync_at"] = now
        JulesConnection.objects.filter(pk=connection_id, sync_claim_token=token).update(**updates)
        return
    connection = (
        JulesConnection.objects.filter(pk=connection_id).only("consecutive_failures").first()
    )
    failures = (connection.consecutive_failures if connection else 0) + 1
    updates.update(
        sync_status=status, last_error=error, last_error_at=now, consecutive_failures=failures
    )
    JulesConnection.objects.filter(pk=connection_id, sync_claim_token=token).update(**updates)


def sync_sources(connection_id: int) -> int:
    """Refresh one connection's sources now (the `sync_sources` task)."""
    connection = JulesConnection.objects.get(pk=connection_id)
    return write_sources(connection, sync_client(connection))


def sync_one_session(session_id: int, *, client: JulesClient | None = None) -> SyncReport:
    """Re-read one session and its new activities now."""
    report = SyncReport()
    session = Session.objects.select_related("connection").filter(pk=session_id).first()
    if session is None:
        return report
    connection = session.connection
    try:
        client = client or sync_client(connection)
        store = store_for()
        repos = {s.name: s.full_name for s in Source.objects.filter(connection=connection)}
        needs: list[int] = []
        _refresh_due(client, connection, store, [session], report, repos, needs, 1)
        # A superseded row is left alone: its id now names another session.
        fresh = Session.objects.filter(pk=session_id, deleted_remotely=False).first()
        if fresh is not None:
            sync_activities(client, connection, [fresh], store=store, report=report, workers=1)
    except (jerrors.JulesError, ConnectionUnusable) as exc:
        report.errors.append(describe_error(exc))
    return report


def due_connections(now: dt.datetime | None = None) -> list[int]:
    """The enabled connections whose next pass is due (the `schedule_syncs` task enqueues
    them)."""
    now = now or timezone.now()
    # Passes come at the changes pass's cadence (each lists the first page), or without it
    # at the live sessions' own.
    cadence = settings.SYNC_CHANGES_SECONDS or settings.SYNC_ACTIVE_SECONDS
    due = []
    for connection in JulesConnection.objects.filter(enabled=True).exclude(
        sync_status=SyncStatus.BROKEN
    ):
        if connection.sync_claimed_until and connection.sync_claimed_until > now:
            continue
        # Failures back off exponentially, capped at ten minutes.
        interval = min(cadence * (2 ** min(connection.consecutive_failures, 10)), 600)
        started = connection.last_sync_started_at
        # A pass starts just after the beat's tick, so `interval` later the next tick finds
        # it a hair short: without the slack every pass would wait one more beat.
        if started is None or (now - started).total_seconds() >= interval - SCHEDULE_SLACK:
            due.append(connection.pk)
    return due
