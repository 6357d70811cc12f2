"""Bulk writes for the sync's hot path.

Table and column names in the SQL below come from model metadata, never from input.

On PostgreSQL rows travel by COPY into a temporary table and are merged with one
statement: Django's `bulk_create` and `bulk_update` build the same statements with
per-value quoting and CASE expressions, which cost more than downloading the data. Other
databases (SQLite in development and unit tests) use the ORM, with the same results.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, models, transaction
from psycopg.types.json import Jsonb


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


def _stage(
    cursor: Any,
    model: type[models.Model],
    fields: list[models.Field[Any, Any]],
    rows: Sequence[models.Model],
    key: bool,
) -> str:
    table = model._meta.db_table
    stage = f"_stage_{table}"
    columns = ([model._meta.pk.column] if key else []) + [f.column for f in fields]
    cursor.execute(f'DROP TABLE IF EXISTS "{stage}"')
    cursor.execute(
        f'CREATE TEMP TABLE "{stage}" ON COMMIT DROP AS '
        f'SELECT {", ".join(chr(34) + c + chr(34) for c in columns)} FROM "{table}" WITH NO DATA'
    )
    column_list = ", ".join(f'"{c}"' for c in columns)
    with cursor.cursor.copy(f'COPY "{stage}" ({column_list}) FROM STDIN') as copy:
        for obj in rows:
            values = [_value(obj, f) for f in fields]
            copy.write_row(([obj.pk] if key else []) + values)
    return stage


def insert_ignoring_conflicts(model: type[models.Model], rows: Sequence[models.Model]) -> None:
    """Insert rows; rows that collide with a unique constraint are skipped."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(rows, ignore_conflicts=True, batch_size=500)
        return
    fields = _fields(model, None)
    columns = ", ".join(f'"{f.column}"' for f in fields)
    # The staging table lives until the transaction ends, so both steps share one.
    with transaction.atomic(), connection.cursor() as cursor:
        stage = _stage(cursor, model, fields, rows, key=False)
        cursor.execute(
            f'INSERT INTO "{model._meta.db_table}" ({columns}) SELECT {columns} FROM "{stage}" '
            "ON CONFLICT DO NOTHING"
        )


def update_fields(
    model: type[models.Model], rows: Sequence[models.Model], names: Sequence[str]
) -> None:
    """Write the named fields of rows that already exist (by primary key)."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(rows, list(names), batch_size=500)
        return
    fields = _fields(model, names)
    pk = model._meta.pk.column
    assignments = ", ".join(f'"{f.column}" = s."{f.column}"' for f in fields)
    with transaction.atomic(), connection.cursor() as cursor:
        stage = _stage(cursor, model, fields, rows, key=True)
        cursor.execute(
            f'UPDATE "{model._meta.db_table}" AS t SET {assignments} FROM "{stage}" AS s '
            f'WHERE t."{pk}" = s."{pk}"'
        )
