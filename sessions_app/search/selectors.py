"""`search_sessions`: the sessions of a person's teams that match what they typed.

Cost is bounded whatever the words (docs/search.md#why-common-words-stay-fast): matches
are read newest first with the list's filters and LIMIT pushed into the query, so a
common word stops after `WINDOW` rows instead of ranking every session that holds it.
Only those newest matches are ranked, and the facets count them.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from sessions_app.access import memberships_for_user
from sessions_app.models import Session, SessionSearchDocument, SessionState
from sessions_app.search.backends import backend
from sessions_app.search.fields import GT, LABELS, LT, START, STOP
from sessions_app.search.query import ParsedQuery
from sessions_app.sessions.filters import created_bounds, filter_sessions, in_states
from sessions_app.sessions.forms import DELETED

# The newest matches read, ranked and counted by the facets. A word in one session out of
# twelve needs about twelve times this many rows read: 1,000 cost 50 ms, 200 cost 10-25.
WINDOW = 200
PAGE_SIZE = 20
SNIPPET_CHARS = 400
# A row of the window, as the facets read it.
ROW = (
    "id",
    "state",
    "deleted_remotely",
    "repo",
    "launched_by_id",
    "launched_by__username",
    "create_time",
)


@dataclass
class Hit:
    session: Session
    field: str  # where it matched, in words
    snippet: SafeString


@dataclass
class Facets:
    states: list[tuple[str, str, int]] = field(default_factory=list)
    repos: list[tuple[str, int]] = field(default_factory=list)
    people: list[tuple[str, str, int]] = field(default_factory=list)
    months: list[tuple[dt.date, int]] = field(default_factory=list)


@dataclass
class SearchResults:
    query: ParsedQuery
    hits: list[Hit] = field(default_factory=list)
    # Matches found, at most WINDOW; `capped` when there are more.
    matched: int = 0
    capped: bool = False
    page: int = 1
    pages: int = 0
    facets: Facets = field(default_factory=Facets)
    notice: str = ""


def marked(text: str) -> SafeString:
    """Escape `text`, then turn the database's match marks (and only those) into <mark>."""
    text = text[:SNIPPET_CHARS] if START not in text[SNIPPET_CHARS:] else text
    out: list[str] = []
    inside = False
    for index, part in enumerate(text.replace(STOP, START).split(START)):
        if index:
            out.append("</mark>" if inside else "<mark>")
            inside = not inside
        out.append(escape(part.replace(LT, "<").replace(GT, ">")))
    if inside:
        out.append("</mark>")
    return mark_safe("".join(out).replace("\n", " "))  # noqa: S308 - escaped above.


def _path_snippet(paths: str, prefix: str) -> str:
    lines = [p for p in paths.split("\n") if p.startswith(prefix)]
    return " · ".join(f"{START}{p[: len(prefix)]}{STOP}{p[len(prefix) :]}" for p in lines[:5])


def _facets(rows: list[tuple[Any, ...]]) -> Facets:
    labels = dict(SessionState.choices)
    states: Counter[str] = Counter()
    repos: Counter[str] = Counter()
    people: Counter[tuple[str, str]] = Counter()
    months: Counter[dt.date] = Counter()
    zone = timezone.get_current_timezone()
    for _, state, deleted, repo, person, name, created in rows:
        states[DELETED if deleted else state] += 1
        if repo:
            repos[repo] += 1
        people[(str(person), name) if person else ("none", "Outside the portal")] += 1
        if created:
            months[created.astimezone(zone).date().replace(day=1)] += 1
    return Facets(
        states=[(s, labels.get(s, "Deleted on Jules"), n) for s, n in states.most_common()],
        repos=repos.most_common(10),
        people=[(pk, name, n) for (pk, name), n in people.most_common(10)],
        months=sorted(months.items(), reverse=True)[:12],
    )


def scoped_sessions(user: Any, filters: dict[str, Any]) -> QuerySet[Session]:
    """The person's sessions narrowed by the list's filters (the list's own code)."""
    team_ids = list(memberships_for_user(user))
    qs, states = filter_sessions(team_ids, {**filters, "q": ""})
    return in_states(qs, states) if states is not None else qs


# The list's filters a document answers alone (it copies the team, connection, creation
# time and archived flag), and the words and path the query holds; any other filter needs
# the session's row before the LIMIT.
DOCUMENT_FILTERS = frozenset(
    {"archived", "connection", "created_after", "created_before", "q", "path"}
)


def scoped_documents(user: Any, filters: dict[str, Any]) -> QuerySet[SessionSearchDocument] | None:
    """The person's documents narrowed by the filters, or None when a filter in use needs
    the session itself (then the window joins the sessions: `scoped_sessions`)."""
    if any(value for name, value in filters.items() if name not in DOCUMENT_FILTERS):
        return None
    qs = SessionSearchDocument.objects.filter(team_id__in=list(memberships_for_user(user)))
    archived = filters.get("archived") or ""
    if archived == "only":
        qs = qs.filter(archived=True)
    elif archived != "include":
        qs = qs.filter(archived=False)
    if filters.get("connection"):
        qs = qs.filter(connection_id=filters["connection"])
    start, end = created_bounds(filters)
    if start is not None:
        qs = qs.filter(create_time__gte=start)
    if end is not None:
        qs = qs.filter(create_time__lt=end)
    return qs


def _window(user: Any, query: ParsedQuery, filters: dict[str, Any], engine: Any) -> list[Any]:
    """The newest WINDOW + 1 matches, as rows for the facets. With the list's default
    filters the walk and its LIMIT run on the documents alone, and only the rows kept are
    read from the sessions (docs/search.md#why-common-words-stay-fast)."""
    documents = scoped_documents(user, filters)
    if documents is None:
        qs = engine.match(scoped_sessions(user, filters), query)
        return list(qs.order_by("-create_time", "-id").values_list(*ROW)[: WINDOW + 1])
    ids = list(
        engine.match(documents, query)
        .order_by("-create_time", "-session_id")
        .values_list("session_id", flat=True)[: WINDOW + 1]
    )
    rows = {row[0]: row for row in Session.objects.filter(pk__in=ids).values_list(*ROW)}
    return [rows[pk] for pk in ids if pk in rows]


def search_sessions(
    user: Any, query: ParsedQuery, filters: dict[str, Any] | None = None, *, page: int = 1
) -> SearchResults:
    """The page `page` of matches among the person's sessions, best first."""
    results = SearchResults(query=query, page=page)
    engine = backend()
    if not engine.usable(query):
        if not query.empty:
            results.notice = "Type a word to look for (punctuation alone finds nothing)."
        return results
    rows = _window(user, query, filters or {}, engine)
    results.capped = len(rows) > WINDOW
    rows = rows[:WINDOW]
    results.matched = len(rows)
    results.facets = _facets(rows)
    candidates = [row[0] for row in rows]
    ranks = engine.rank(candidates, query)
    # Best rank first; recency (the candidates' order) breaks ties.
    order = {pk: i for i, pk in enumerate(candidates)}
    ranked = sorted(candidates, key=lambda pk: (-ranks.get(pk, 0.0), order[pk]))
    results.pages = max(1, -(-len(ranked) // PAGE_SIZE))
    results.page = page = min(max(1, page), results.pages)
    shown = ranked[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    results.hits = _hits(shown, query, engine)
    return results


def _hits(ids: list[int], query: ParsedQuery, engine: Any) -> list[Hit]:
    if not ids:
        return []
    sessions = Session.objects.select_related("launched_by", "team").in_bulk(ids)
    highlights = engine.highlight(ids, query)
    paths: dict[int, str] = {}
    if query.path:
        paths = dict(
            SessionSearchDocument.objects.filter(session_id__in=ids).values_list(
                "session_id", "paths"
            )
        )
    hits = []
    for pk in ids:
        if pk not in sessions:
            continue
        column, text = highlights.get(pk, ("", ""))
        if not column and query.path:
            column, text = "paths", _path_snippet(paths.get(pk, ""), query.path)
        label = LABELS.get(column, "several fields")
        hits.append(Hit(sessions[pk], label, marked(text)))
    return hits
