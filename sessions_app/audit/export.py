"""The audit history as a file: CSV, a JSON array or JSON lines, written while the rows
are read. The audit page's exports and the API's `GET /audit/export` share this writer.

Rows come from a database iterator in chunks and leave in pieces of about `OUTPUT_CHUNK`
characters, so memory stays flat however many entries match.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet

from sessions_app.models import AuditEntry

EXPORT_CHUNK = 2000
OUTPUT_CHUNK = 64 * 1024
EXPORT_FIELDS = (
    "seq",
    "created_at",
    "actor_label",
    "team__name",
    "action",
    "target_type",
    "target_id",
    "target_label",
    "details",
    "ip_address",
    "hash",
)
EXPORT_HEADER = (
    "seq",
    "time",
    "person",
    "team",
    "action",
    "target_type",
    "target_id",
    "target",
    "details",
    "ip_address",
    "hash",
)
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = frozenset({"=", "+", "-", "@", "\t", "\r"})
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
}


class _Echo:
    """A file-like object whose write returns the line, for csv.writer in a generator."""

    def write(self, value: str) -> str:
        return value


def cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text: prompts and labels are user text."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value
    return value


def _rows(entries: QuerySet[AuditEntry]) -> Iterator[tuple[Any, ...]]:
    yield from entries.values_list(*EXPORT_FIELDS).iterator(chunk_size=EXPORT_CHUNK)


def _items(entries: QuerySet[AuditEntry]) -> Iterator[dict[str, Any]]:
    for row in _rows(entries):
        yield dict(zip(EXPORT_HEADER, row, strict=True))


def _dumps(value: Any) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True)


def _batched(pieces: Iterator[str]) -> Iterator[str]:
    """Join small pieces into chunks of about OUTPUT_CHUNK characters: one write per chunk
    instead of one per row, and still only one chunk in memory."""
    buffer: list[str] = []
    size = 0
    for piece in pieces:
        buffer.append(piece)
        size += len(piece)
        if size >= OUTPUT_CHUNK:
            yield "".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer)


def csv_chunks(entries: QuerySet[AuditEntry]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    # The header goes out at once, before the query runs.
    yield writer.writerow(EXPORT_HEADER)

    def lines() -> Iterator[str]:
        for row in _rows(entries):
            values = list(row)
            values[1] = values[1].isoformat()
            values[8] = _dumps(values[8])
            yield writer.writerow([cell(v) for v in values])

    yield from _batched(lines())


def json_chunks(entries: QuerySet[AuditEntry]) -> Iterator[str]:
    yield "[\n"

    def items() -> Iterator[str]:
        first = True
        for item in _items(entries):
            yield ("" if first else ",\n") + _dumps(item)
            first = False
        yield "\n]\n"

    yield from _batched(items())


def jsonl_chunks(entries: QuerySet[AuditEntry]) -> Iterator[str]:
    """One JSON object a line, newest first: a reader can stop or resume at any line."""
    yield from _batched(_dumps(item) + "\n" for item in _items(entries))


WRITERS = {"csv": csv_chunks, "json": json_chunks, "jsonl": jsonl_chunks}
