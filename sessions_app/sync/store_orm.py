"""The sync's store through Django's ORM: SQLite (development, unit tests) and any other
database; the parity test runs it on PostgreSQL too, against `PostgreSQLStore`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import models, transaction
from django.utils import timezone

from jules import resources as jr
from sessions_app.models import Activity, JulesConnection, Session, SessionTransition
from sessions_app.sync.mapping import activity_row, activity_transition

BOOKKEEPING = [
    "last_activity_at",
    "last_activity_time_raw",
    "activity_count",
    "activities_read_for",
]
_EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass
class OrmBatch:
    connection: JulesConnection
    fetched: list[tuple[Session, list[jr.Activity]]]
    first_sight: set[int]
    booked: set[int]


class OrmStore:
    name = "orm"

    def can_thread(self) -> bool:
        # SQLite allows one writer at a time: a second connection would only wait.
        return False

    def insert_rows(self, model: type[models.Model], rows: Sequence[models.Model]) -> None:
        if rows:
            model._default_manager.bulk_create(rows, ignore_conflicts=True, batch_size=500)

    def update_rows(
        self, model: type[models.Model], rows: Sequence[models.Model], names: Sequence[str]
    ) -> None:
        if rows:
            model._default_manager.bulk_update(rows, list(names), batch_size=500)

    def insert_sessions(self, rows: Sequence[Session], now: dt.datetime) -> dict[str, int]:
        if not rows:
            return {}
        connection_id = rows[0].connection_id
        remote_ids = [s.remote_id for s in rows]
        with transaction.atomic(savepoint=False):
            taken = set(
                Session.objects.filter(
                    connection_id=connection_id, remote_id__in=remote_ids
                ).values_list("remote_id", flat=True)
            )
            new = [s for s in rows if s.remote_id not in taken]
            # Ids are not returned when conflicts are ignored: read them back.
            Session.objects.bulk_create(new, ignore_conflicts=True, batch_size=500)
            ids = dict(
                Session.objects.filter(
                    connection_id=connection_id, remote_id__in=[s.remote_id for s in new]
                ).values_list("remote_id", "id")
            )
            SessionTransition.objects.bulk_create(
                [
                    SessionTransition(
                        team_id=s.team_id,
                        session_id=ids[s.remote_id],
                        kind=SessionTransition.Kind.DISCOVERED,
                        to_state=s.state,
                        observed_at=now,
                    )
                    for s in new
                    if s.remote_id in ids
                ],
                batch_size=500,
            )
        return ids

    def prepare_activities(
        self,
        connection: JulesConnection,
        fetched: list[tuple[Session, list[jr.Activity]]],
        first_sight: set[int],
        booked: set[int],
    ) -> OrmBatch:
        return OrmBatch(connection, fetched, first_sight, booked)

    def apply_activities(self, batch: OrmBatch) -> tuple[int, list[SessionTransition]]:
        fetched, booked = batch.fetched, batch.booked
        for session, _ in fetched:
            session.activities_read_for = session.update_time
        # Only sessions that already hold activities can see a re-read one (the pivot is a
        # millisecond early); look up just the stored activities near their pivots.
        resumed = [s for s, items in fetched if items and s.pk not in booked and s.last_activity_at]
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
            new: list[jr.Activity] = []
            for remote in items:
                if not remote.id:
                    continue
                key = (session.pk, remote.id[:64])
                if key not in known:
                    known.add(key)
                    new.append(remote)
            for remote in new:
                rows.append(activity_row(session.pk, remote))
                if session.pk not in batch.first_sight:
                    transition = activity_transition(batch.connection, session, remote, now)
                    if transition is not None:
                        transitions.append(transition)
            if not new or session.pk in booked:
                continue
            newest = max(new, key=lambda a: a.create_time or _EARLIEST)
            if newest.create_time and (
                session.last_activity_at is None or newest.create_time > session.last_activity_at
            ):
                session.last_activity_at = newest.create_time
                session.last_activity_time_raw = (newest.create_time_raw or "")[:40]
            session.activity_count += len(new)
        with transaction.atomic(savepoint=False):
            self.insert_rows(Activity, rows)
            self.update_rows(Session, [s for s, _ in fetched if s.pk not in booked], BOOKKEEPING)
        return len(rows), transitions
