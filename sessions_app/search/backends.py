"""Each database's half of the search: match, rank and highlight (docs/search.md).

`PostgreSQLBackend` reads the generated `search_vector` (GIN) and the trigram index on
`paths`; `SQLiteBackend` the FTS5 table that triggers keep. Both take a queryset of
sessions already scoped to the person's teams and filtered, and add to it only a
condition, so every list filter and the team scope apply before any text does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from django.db import connection
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

from sessions_app.models import Session, SessionSearchDocument
from sessions_app.search.fields import COLUMNS, GT, LT, START, STOP
from sessions_app.search.query import ParsedQuery, like_prefix, to_fts5

DOC = SessionSearchDocument._meta.db_table
FTS = "sessions_app_search_fts"
CONFIG = "english"
# ts_headline reads at most this much of a field: its cost grows with the text.
HEADLINE_TEXT = 30_000
# Short text is shown whole; long text as fragments around the matches (fragments of a
# short text would keep only the matching words).
SHORT_TEXT = 300
HEADLINE_WHOLE = f"StartSel={START}, StopSel={STOP}, MaxWords=40, MinWords=20"
HEADLINE_FRAGMENTS = f'{HEADLINE_WHOLE}, MaxFragments=2, FragmentDelimiter=" … "'

# Weights of the FTS5 columns in bm25, in COLUMNS order (as the PostgreSQL weights).
BM25_WEIGHTS = (10.0, 10.0, 4.0, 4.0, 2.0, 2.0, 2.0, 1.0, 1.0)

# (field column or "", text with START/STOP marks around each match)
Highlight = tuple[str, str]


class Backend(Protocol):
    def match(self, qs: QuerySet[Any], query: ParsedQuery) -> QuerySet[Any]:
        """`qs` of sessions or of their documents, narrowed to the matches."""
        ...

    def rank(self, ids: Sequence[int], query: ParsedQuery) -> dict[int, float]: ...

    def highlight(self, ids: Sequence[int], query: ParsedQuery) -> dict[int, Highlight]: ...

    def usable(self, query: ParsedQuery) -> bool: ...


def _condition(sql: str, params: Sequence[object]) -> RawSQL:
    return RawSQL(sql, tuple(params), output_field=BooleanField())


class PostgreSQLBackend:
    def usable(self, query: ParsedQuery) -> bool:
        return not query.empty

    def match(self, qs: QuerySet[Any], query: ParsedQuery) -> QuerySet[Any]:
        if qs.model is Session:
            # The join to the documents; the conditions below name its table.
            qs = qs.filter(search_document__isnull=False)
        if query.text:
            qs = qs.filter(
                _condition(
                    f'"{DOC}"."search_vector" @@ websearch_to_tsquery(%s::regconfig, %s)',
                    [CONFIG, query.text],
                )
            )
        if query.path:
            qs = qs.filter(_condition(f'"{DOC}"."paths" LIKE %s', [like_prefix(query.path)]))
        return qs

    def rank(self, ids: Sequence[int], query: ParsedQuery) -> dict[int, float]:
        if not ids or not query.text:
            return {}
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT session_id, ts_rank(search_vector, websearch_to_tsquery(%s::regconfig, %s)) "
                f'FROM "{DOC}" WHERE session_id = ANY(%s)',
                [CONFIG, query.text, list(ids)],
            )
            return {pk: float(score) for pk, score in cursor.fetchall()}

    def highlight(self, ids: Sequence[int], query: ParsedQuery) -> dict[int, Highlight]:
        if not ids or not query.text:
            return {}
        # The first field (in order of importance) that matches the whole query on its
        # own; CASE stops at it, so the large fields are parsed only when they must be.
        first = " ".join(
            f"WHEN to_tsvector(w.cfg, left(d.{c}, {HEADLINE_TEXT})) @@ w.q THEN '{c}'"
            for c in COLUMNS
        )
        text = " ".join(f"WHEN '{c}' THEN d.{c}" for c in COLUMNS)
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                WITH w AS (SELECT %s::regconfig AS cfg, websearch_to_tsquery(%s::regconfig, %s) AS q),
                picked AS (
                    SELECT d.session_id, COALESCE(CASE {first} END, '') AS field
                    FROM "{DOC}" AS d, w WHERE d.session_id = ANY(%s)
                ),
                texts AS (
                    SELECT p.session_id, p.field, translate(
                        left(CASE p.field {text} ELSE d.title END, {HEADLINE_TEXT}), '<>', %s
                    ) AS body
                    FROM picked AS p JOIN "{DOC}" AS d ON d.session_id = p.session_id
                )
                SELECT t.session_id, t.field, ts_headline(w.cfg, t.body, w.q,
                    CASE WHEN length(t.body) < {SHORT_TEXT} THEN %s ELSE %s END)
                FROM texts AS t, w
                """,
                [
                    CONFIG,
                    CONFIG,
                    query.text,
                    list(ids),
                    LT + GT,
                    HEADLINE_WHOLE,
                    HEADLINE_FRAGMENTS,
                ],
            )
            return {pk: (field, snippet) for pk, field, snippet in cursor.fetchall()}


class SQLiteBackend:
    def usable(self, query: ParsedQuery) -> bool:
        return bool(query.path or to_fts5(query.text))

    def match(self, qs: QuerySet[Any], query: ParsedQuery) -> QuerySet[Any]:
        documents = qs.model is SessionSearchDocument
        key = f'"{DOC}"."session_id"' if documents else f'"{Session._meta.db_table}"."id"'
        if query.text:
            qs = qs.filter(
                _condition(
                    f"{key} IN (SELECT rowid FROM {FTS} WHERE {FTS} MATCH %s)",
                    [to_fts5(query.text)],
                )
            )
        if query.path:
            if not documents:
                qs = qs.filter(search_document__isnull=False)
            # instr, not LIKE: SQLite's LIKE ignores case, and paths do not.
            qs = qs.filter(_condition(f'instr("{DOC}"."paths", %s) > 0', ["\n" + query.path]))
        return qs

    def rank(self, ids: Sequence[int], query: ParsedQuery) -> dict[int, float]:
        if not ids or not query.text:
            return {}
        marks = ", ".join("%s" for _ in ids)
        weights = ", ".join(str(w) for w in BM25_WEIGHTS)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT rowid, bm25({FTS}, {weights}) FROM {FTS} "
                f"WHERE {FTS} MATCH %s AND rowid IN ({marks})",
                [to_fts5(query.text), *ids],
            )
            # bm25 is lower for a better match.
            return {pk: -float(score) for pk, score in cursor.fetchall()}

    def highlight(self, ids: Sequence[int], query: ParsedQuery) -> dict[int, Highlight]:
        if not ids or not query.text:
            return {}
        marks = ", ".join("%s" for _ in ids)
        snippets = ", ".join(f"snippet({FTS}, {i}, %s, %s, ' … ', 24)" for i in range(len(COLUMNS)))
        params: list[Any] = [START, STOP] * len(COLUMNS)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT rowid, {snippets} FROM {FTS} WHERE {FTS} MATCH %s AND rowid IN ({marks})",
                [*params, to_fts5(query.text), *ids],
            )
            found: dict[int, Highlight] = {}
            for pk, *texts in cursor.fetchall():
                hit = next(
                    ((c, t) for c, t in zip(COLUMNS, texts, strict=True) if t and START in t),
                    ("", texts[0] or ""),
                )
                found[pk] = hit
            return found


def backend() -> Backend:
    if connection.vendor == "postgresql":
        return PostgreSQLBackend()
    return SQLiteBackend()
