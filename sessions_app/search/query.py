"""What a person typed, taken apart: words, phrases, exclusions and a path prefix.

Pure functions, no ORM. PostgreSQL reads the words itself (`websearch_to_tsquery`); for
SQLite the same syntax becomes an FTS5 query in which every term is quoted, so no input
can be FTS5 syntax (docs/search.md#query-syntax).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_QUERY = 200
MAX_TERMS = 16
# `path:sessions_app/sync/` (or a quoted path) inside the search box.
_PATH = re.compile(r'(?:^|\s)path:(?:"([^"]*)"|(\S+))')
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class ParsedQuery:
    text: str  # the words and phrases, for websearch_to_tsquery
    path: str  # a path prefix, or ""

    @property
    def empty(self) -> bool:
        return not self.text and not self.path


def parse(raw: str, path: str = "") -> ParsedQuery:
    """Split `path:` out of the box's text; an explicit `path` wins."""
    raw = (raw or "")[:MAX_QUERY].replace("\x00", " ")
    found = _PATH.search(raw)
    if found:
        path = path or found.group(1) or found.group(2) or ""
        raw = (raw[: found.start()] + " " + raw[found.end() :]).strip()
    return ParsedQuery(" ".join(raw.split()), path.strip().lstrip("/")[:300])


def to_fts5(text: str) -> str:
    """websearch syntax (words, "phrases", -exclusions, or) as an FTS5 MATCH expression;
    "" when nothing is left to look for."""
    included: list[str] = []
    excluded: list[str] = []
    pending_or = False
    for match in _TOKEN.finditer(text):
        negative, phrase, bare = match.group(1), match.group(2), match.group(3)
        if bare is not None and bare.lower() == "or" and included:
            pending_or = True
            continue
        if bare is not None and bare.startswith("-") and len(bare) > 1:
            negative, bare = "-", bare[1:]
        words = _WORD.findall(phrase if phrase is not None else bare or "")
        if not words:
            continue
        term = '"' + " ".join(words) + '"'
        if negative:
            excluded.append(term)
        elif pending_or:
            included[-1] = f"({included[-1]} OR {term})"
        else:
            included.append(term)
        pending_or = False
        if len(included) + len(excluded) >= MAX_TERMS:
            break
    if not included:
        return ""
    expression = " AND ".join(included)
    for term in excluded:
        expression = f"({expression}) NOT {term}"
    return expression


def like_prefix(path: str) -> str:
    """A LIKE pattern (escape character `\\`) for a line of `paths` that starts with path."""
    escaped = path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%\n{escaped}%"
