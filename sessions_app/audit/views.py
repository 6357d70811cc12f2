"""The audit pages: the filtered history, its CSV and JSON exports, a session's history.

Everything is scoped to the user's teams by `audit_entries_for_user`. Exports stream
rows from a database iterator, so memory stays flat however many entries match.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.core.paginator import Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.http import (
    Http404,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from sessions_app.audit.filters import (
    ACTION_LABELS,
    AuditFilterForm,
    filtered_entries,
    session_history_entries,
)
from sessions_app.models import AuditEntry, Role, SessionState
from sessions_app.sessions.selectors import get_session_for_user
from sessions_app.web.request import AuthedRequest

PAGE_SIZE = 50
HISTORY_SIZE = 100
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


# Detail keys in words; the rest read well with underscores as spaces.
KEY_WORDS = {
    "from_state": "from",
    "to_state": "to",
    "remote_id": "Jules id",
    "plan_id": "plan",
    "base_url": "address",
    "limit": "locked out by",
    "refused": "attempts refused",
}
ROLE_KEYS = {"role", "from", "to"}
STATE_KEYS = {"state", "from_state", "to_state"}
HIDDEN_KEYS = {"action_id"}
STATE_WORDS = dict(SessionState.choices)
ROLE_WORDS = dict(Role.choices)
LIMIT_WORDS = {"address": "address (many accounts)"}


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _words(key: str, value: Any) -> str:
    """A detail value as a person reads it: labels for states and roles, yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        if key in ROLE_KEYS and value in ROLE_WORDS:
            return ROLE_WORDS[value]
        if key == "limit":
            return LIMIT_WORDS.get(value, value)
        if key in STATE_KEYS:
            return STATE_WORDS.get(value, value)
        return value
    if isinstance(value, dict):
        return ", ".join(
            f"{name.replace('_', ' ')}: {_words(name, item)}"
            for name, item in value.items()
            if not _is_empty(item)
        )
    return json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class EntryView:
    """An entry as the pages show it: the action in words, the details as short pairs."""

    entry: AuditEntry
    action_words: str
    detail_items: list[tuple[str, str]]


def _describe(entry: AuditEntry) -> EntryView:
    items = []
    for key, value in (entry.details or {}).items():
        if key in HIDDEN_KEYS or _is_empty(value):
            continue
        text = _words(key, value)
        if not text:
            continue
        label = KEY_WORDS.get(key, key.replace("_", " "))
        items.append((label, text if len(text) <= 300 else text[:300] + "…"))
    return EntryView(entry, ACTION_LABELS.get(entry.action, entry.action), items)


@require_GET
def audit_list(request: AuthedRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET, user=request.user)
    data = form.cleaned_or_empty()
    entries = filtered_entries(request.user, data).select_related("team")
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    views = [_describe(entry) for entry in page.object_list]
    query = request.GET.copy()
    query.pop("page", None)
    template = "sessions_app/audit/audit_list.html"
    if request.htmx and request.htmx.target == "audit-results":
        template += "#results"
    return render(
        request,
        template,
        {
            "form": form,
            "page": page,
            "entries": views,
            "query": query.urlencode(),
            "nav_active": "audit",
        },
    )


class _Echo:
    """A file-like object whose write returns the line, for csv.writer in a generator."""

    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> Any:
    # A spreadsheet runs cells that start with these as formulas; prompts are user text.
    if isinstance(value, str) and value[:1] in {"=", "+", "-", "@", "\t", "\r"}:
        return "'" + value
    return value


def _rows(entries: Any) -> Iterator[tuple[Any, ...]]:
    yield from entries.values_list(*EXPORT_FIELDS).iterator(chunk_size=EXPORT_CHUNK)


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


def _csv_lines(entries: Any) -> Iterator[str]:
    writer = csv.writer(_Echo())
    # The header goes out at once, before the query runs.
    yield writer.writerow(EXPORT_HEADER)

    def lines() -> Iterator[str]:
        for row in _rows(entries):
            values = list(row)
            values[1] = values[1].isoformat()
            values[8] = json.dumps(values[8], sort_keys=True, cls=DjangoJSONEncoder)
            yield writer.writerow([_cell(v) for v in values])

    yield from _batched(lines())


def _json_chunks(entries: Any) -> Iterator[str]:
    yield "[\n"

    def items() -> Iterator[str]:
        first = True
        for row in _rows(entries):
            item = dict(zip(EXPORT_HEADER, row, strict=True))
            yield ("" if first else ",\n") + json.dumps(item, cls=DjangoJSONEncoder, sort_keys=True)
            first = False
        yield "\n]\n"

    yield from _batched(items())


@require_GET
def audit_export(request: AuthedRequest, fmt: str) -> HttpResponse | StreamingHttpResponse:
    if fmt not in {"csv", "json"}:
        raise Http404("No such export format.")
    form = AuditFilterForm(request.GET, user=request.user)
    data = form.cleaned_or_empty()
    if form.problems:
        # An export without the filter asked for would hold more than was meant.
        text = " ".join(["Nothing was exported.", *form.problems, "Fix the filter or remove it."])
        return HttpResponseBadRequest(text, content_type="text/plain; charset=utf-8")
    entries = filtered_entries(request.user, data)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    if fmt == "csv":
        response = StreamingHttpResponse(
            _csv_lines(entries), content_type="text/csv; charset=utf-8"
        )
    else:
        response = StreamingHttpResponse(
            _json_chunks(entries), content_type="application/json; charset=utf-8"
        )
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{fmt}"'
    return response


@require_GET
def session_history(request: AuthedRequest, pk: int) -> HttpResponse:
    """A session's own history: its fragment goes into the session page's history tab."""
    session = get_session_for_user(request.user, pk)
    # The user is in the session's team, so every entry about it is theirs to see.
    entries = [_describe(entry) for entry in session_history_entries(session, HISTORY_SIZE)]
    template = "sessions_app/audit/session_history.html"
    if request.htmx:
        template += "#history"
    return render(
        request,
        template,
        {"session": session, "entries": entries, "nav_active": "sessions"},
    )
