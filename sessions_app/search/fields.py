"""The searchable fields of a session, in the order a result names where it matched."""

from __future__ import annotations

# (column, label, PostgreSQL weight): the order is the order of importance.
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("title", "title", "A"),
    ("prompt", "prompt", "A"),
    ("plan", "plan steps", "B"),
    ("pull_requests", "pull request", "B"),
    ("agent_messages", "agent message", "C"),
    ("user_messages", "user message", "C"),
    ("paths", "file path", "C"),
    ("commands", "bash command or output", "D"),
    ("patches", "patch", "D"),
)
COLUMNS = tuple(column for column, _, _ in FIELDS)
LABELS = {column: label for column, label, _ in FIELDS}
# The most text one field keeps: a document stays well below PostgreSQL's 1 MB tsvector
# limit and indexing one stays cheap for the sync.
FIELD_LIMIT = 60_000
# Marks of a match inside a snippet; stripped from the indexed text so that only the
# database's own marks become <mark> (docs/search.md#highlighting).
START, STOP = "\x02", "\x03"
# ts_headline's parser drops what looks like an HTML tag; `<` and `>` go in as these and
# come back as themselves, so text that looks like HTML stays visible (and escaped).
LT, GT = "\x04", "\x05"
