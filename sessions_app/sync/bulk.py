"""Bulk writes for the sync's hot path.

Table and column names in the SQL below come from model metadata, never from input.

On PostgreSQL rows travel by COPY into a temporary staging table and are merged with one
statement: Django's `bulk_create` and `bulk_update` build the same statements with
per-value quoting and CASE expressions, which cost more than downloading the data. Other
databases (SQLite in development and unit tests) use the ORM, with the same results.

A staging table is created once per database session (`ON COMMIT DELETE ROWS`, so it is
empty again after every transaction) and emptied before each use, so a batch costs one
round trip for the staging, one COPY and one merge.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, models, transaction
from psycopg.types.json import Jsonb


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def _value(obj: models.Model, field: models.Field[Any, Any]) -> Any:
    value = getattr(obj, field.attname)
    if isinstance(field, models.JSONField):
        return Jsonb(value)
    return value


def _fields(model: type[models.Model], names: Sequence[str] | None) -> list[models.Field[Any, Any]]:
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    if names is not None:
        fields = [f for f in fields if f.name in names or f.attname in names]
    return fields


def columns_of(model: type[models.Model], names: Sequence[str] | None = None) -> list[str]:
    """The database columns of a model's non-key fields (all, or the named ones)."""
    return [f.column for f in _fields(model, names)]


def _quoted(columns: Sequence[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


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


def _model_rows(
    fields: list[models.Field[Any, Any]], rows: Sequence[models.Model], key: bool
) -> Iterable[list[Any]]:
    for obj in rows:
        values = [_value(obj, f) for f in fields]
        yield ([obj.pk] if key else []) + values


def insert_ignoring_conflicts(model: type[models.Model], rows: Sequence[models.Model]) -> None:
    """Insert rows; rows that collide with a unique constraint are skipped."""
    if not rows:
        return
    if not is_postgresql():
        model._default_manager.bulk_create(rows, ignore_conflicts=True, batch_size=500)
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


def update_fields(
    model: type[models.Model], rows: Sequence[models.Model], names: Sequence[str]
) -> None:
    """Write the named fields of rows that already exist (by primary key)."""
    if not rows:
        return
    if not is_postgresql():
        model._default_manager.bulk_update(rows, list(names), batch_size=500)
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
            f'UPDATE "{table}" AS t SET {assignments} FROM "{name}" AS s WHERE t."{pk}" = s."{pk}"'
        )
