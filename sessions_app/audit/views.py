"""The audit pages: the filtered history, its CSV and JSON exports, a session's history.

Everything is scoped to the user's teams by `audit_entries_for_user`. Exports stream
rows from a database iterator (`audit/export.py`, shared with the API's export).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from sessions_app.audit import export
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
    response = StreamingHttpResponse(
        export.WRITERS[fmt](entries), content_type=export.CONTENT_TYPES[fmt]
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
