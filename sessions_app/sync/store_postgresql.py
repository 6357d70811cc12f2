"""The sync's store on PostgreSQL: COPY into staging tables and one merge statement per step.

Table and column names in the SQL below come from model metadata, never from input.

Rows travel by COPY into a temporary staging table and are merged with one statement:
Django's `bulk_create` and `bulk_update` build the same statements with per-value quoting
and CASE expressions, which cost more than downloading the data. A staging table is
created once per database session (`ON COMMIT DELETE ROWS`, so it is empty again after
every transaction) and emptied before each use, so a batch costs one round trip for the
staging, one COPY and one merge (docs/performance.md).
"""

from __future__ import annotations

import datetime as dt
import json
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from jules import resources as jr
from sessions_app.models import Activity, JulesConnection, Session, SessionTransition
from sessions_app.sync.mapping import (
    ACTIVITY_FIELDS,
    ACTIVITY_JSON_POSITIONS,
    TRANSITION_ACTIVITY_KINDS,
    activity_transition,
    activity_values,
)

# JSON columns travel to COPY as text; compact, and no check for cycles (parsed JSON has
# none).
_json_text = json.JSONEncoder(check_circular=False, separators=(",", ":")).encode


def _fields(model: type[models.Model], names: Sequence[str] | None) -> list[models.Field[Any, Any]]:
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    if names is not None:
        fields = [f for f in fields if f.name in names or f.attname in names]
    return fields


def _quoted(columns: Sequence[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _value(obj: models.Model, field: models.Field[Any, Any]) -> Any:
    value = getattr(obj, field.attname)
    if isinstance(field, models.JSONField):
        return Jsonb(value)
    return value


def _model_rows(
    fields: list[models.Field[Any, Any]], rows: Sequence[models.Model], key: bool
) -> Iterable[list[Any]]:
    for obj in rows:
        values = [_value(obj, f) for f in fields]
        yield ([obj.pk] if key else []) + values


def stage(cursor: Any, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """COPY rows (tuples in the order of `columns`) into an empty staging table; its name.

    The staging table has the target table's column types, so a JSON column takes the
    JSON text as a string; it lives as long as the database session and is emptied at
    every commit. Call inside a transaction.
    """
    digest = zlib.crc32(",".join(columns).encode()) & 0xFFFFFFFF
    name = f"_stage_{table}_{digest:08x}"[:63]
    column_list = _quoted(columns)
    # One round trip: created on first use in this database session, emptied otherwise.
    cursor.execute(
        f'CREATE TEMP TABLE IF NOT EXISTS "{name}" ON COMMIT DELETE ROWS AS '
        f'SELECT {column_list} FROM "{table}" WITH NO DATA; DELETE FROM "{name}"'
    )
    with cursor.cursor.copy(f'COPY "{name}" ({column_list}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)
    return name


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


class PostgreSQLStore:
    name = "postgresql"

    def can_thread(self) -> bool:
        # Rows this connection has not committed would be invisible to the writer's.
        return not connection.in_atomic_block

    def insert_rows(self, model: type[models.Model], rows: Sequence[models.Model]) -> None:
        if not rows:
            return
        fields = _fields(model, None)
        columns = [f.column for f in fields]
        table = model._meta.db_table
        # The staging table empties at commit, so both steps share one transaction.
        with transaction.atomic(savepoint=False), connection.cursor() as cursor:
            name = stage(cursor, table, columns, _model_rows(fields, rows, key=False))
            cursor.execute(
                f'INSERT INTO "{table}" ({_quoted(columns)}) SELECT {_quoted(columns)} '
                f'FROM "{name}" ON CONFLICT DO NOTHING'
            )

    def update_rows(
        self, model: type[models.Model], rows: Sequence[models.Model], names: Sequence[str]
    ) -> None:
        if not rows:
            return
        fields = _fields(model, names)
        pk = model._meta.pk.column
        table = model._meta.db_table
        assignments = ", ".join(f'"{f.column}" = s."{f.column}"' for f in fields)
        with transaction.atomic(savepoint=False), connection.cursor() as cursor:
            name = stage(
                cursor, table, [pk] + [f.column for f in fields], _model_rows(fields, rows, True)
            )
            cursor.execute(
                f'UPDATE "{table}" AS t SET {assignments} FROM "{name}" AS s '
                f'WHERE t."{pk}" = s."{pk}"'
            )

    def insert_sessions(self, rows: Sequence[Session], now: dt.datetime) -> dict[str, int]:
        """One statement inserts the rows and the DISCOVERED transitions of those inserted."""
        if not rows:
            return {}
        session = Session._meta.db_table
        transition = SessionTransition._meta.db_table
        fields = [f for f in Session._meta.concrete_fields if not f.primary_key]
        columns = ", ".join(f'"{f.column}"' for f in fields)
        with transaction.atomic(savepoint=False), connection.cursor() as cursor:
            name = stage(cursor, session, [f.column for f in fields], _session_values(fields, rows))
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
                """,
                [SessionTransition.Kind.DISCOVERED.value, now],
            )
            return dict(cursor.fetchall())

    def prepare_activities(
        self,
        connection: JulesConnection,
        fetched: list[tuple[Session, list[jr.Activity]]],
        first_sight: set[int],
        booked: set[int],
    ) -> ActivityBatch:
        """The rows of a batch (pure Python, no query: it runs while the last batch writes).

        Sessions in `booked` already hold their bookkeeping; their rows are not rewritten.
        """
        batch = ActivityBatch([], [], [], {})
        rows = batch.rows
        positions = ACTIVITY_JSON_POSITIONS
        now = timezone.now()
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
                if remote.kind in TRANSITION_ACTIVITY_KINDS and pk not in first_sight:
                    transition = activity_transition(connection, session, remote, now)
                    if transition is not None:
                        batch.transitions[(pk, remote_id)] = transition
        return batch

    def apply_activities(self, batch: ActivityBatch) -> tuple[int, list[SessionTransition]]:
        """Write a prepared batch in one transaction.

        The activities of sessions this transaction inserted go straight in by COPY. One
        statement inserts the activities the table lacks (the unique key drops the ones a
        re-read brought again), moves each session's count, newest activity and
        `activities_read_for`, and returns what the transitions need; so a batch costs
        four round trips whatever its size.
        """
        activity = Activity._meta.db_table
        session = Session._meta.db_table
        columns = [f.column for f in _fields(Activity, ACTIVITY_FIELDS)]
        column_list = _quoted(columns)
        with transaction.atomic(savepoint=False), connection.cursor() as cursor:
            if batch.direct_rows:
                with cursor.cursor.copy(f'COPY "{activity}" ({column_list}) FROM STDIN') as copy:
                    for row in batch.direct_rows:
                        copy.write_row(row)
            if not batch.rows and not batch.session_ids:
                return len(batch.direct_rows), []
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
                                s.last_activity_at IS NULL
                                OR newest.create_time > s.last_activity_at
                            ) THEN newest.create_time ELSE s.last_activity_at END,
                        last_activity_time_raw = CASE
                            WHEN newest.create_time IS NOT NULL AND (
                                s.last_activity_at IS NULL
                                OR newest.create_time > s.last_activity_at
                            ) THEN newest.create_time_raw ELSE s.last_activity_time_raw END
                    FROM books LEFT JOIN newest ON newest.session_id = books.id
                    WHERE s.id = books.id
                )
                SELECT count(*),
                       array_agg(session_id) FILTER (WHERE kind = ANY(%s::text[])),
                       array_agg(remote_id) FILTER (WHERE kind = ANY(%s::text[]))
                FROM ins
                """,
                [
                    batch.session_ids,
                    batch.read_for,
                    list(TRANSITION_ACTIVITY_KINDS),
                    list(TRANSITION_ACTIVITY_KINDS),
                ],
            )
            added, transition_sessions, transition_ids = cursor.fetchone()
        transitions = [
            batch.transitions[key]
            for key in zip(transition_sessions or [], transition_ids or [], strict=True)
            if key in batch.transitions
        ]
        return added + len(batch.direct_rows), transitions


def _session_values(fields: Sequence[Any], rows: Sequence[Session]) -> Iterable[list[Any]]:
    json_fields = {f.attname for f in fields if f.get_internal_type() == "JSONField"}
    names = [f.attname for f in fields]
    for row in rows:
        yield [_json_text(getattr(row, n)) if n in json_fields else getattr(row, n) for n in names]
