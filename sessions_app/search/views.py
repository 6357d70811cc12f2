"""The search page (docs/search.md): one view, the full page or its results fragment."""

from __future__ import annotations

import datetime as dt

from django.http import HttpResponse, QueryDict
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from sessions_app import access
from sessions_app.access import memberships_for_user
from sessions_app.search.forms import SearchForm
from sessions_app.search.query import parse
from sessions_app.search.selectors import search_sessions
from sessions_app.sessions.forms import parse_id
from sessions_app.web.request import AuthedRequest

TEMPLATE = "search/search.html"


def _address(query: QueryDict, **changes: str) -> str:
    """The page's address with some parameters set (a facet's link); back to page 1."""
    changed = query.copy()
    changed.pop("page", None)
    for key, value in changes.items():
        changed.setlist(key, [value] if value else [])
    return "?" + changed.urlencode()


def _month_end(month: dt.date) -> str:
    following = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return (following - dt.timedelta(days=1)).isoformat()


@require_GET
def search(request: AuthedRequest) -> HttpResponse:
    memberships = memberships_for_user(request.user)
    form = SearchForm(request.GET)
    data = form.cleaned_or_empty()
    query = parse(data.get("q") or "", data.get("path") or "")
    page = parse_id(request.GET.get("page")) or 1
    results = search_sessions(request.user, query, data, page=page)
    # The filters in use, without empty fields (a form sent without script has them).
    kept = QueryDict(mutable=True)
    for key, values in request.GET.lists():
        if key != "page" and (values := [v for v in values if v]):
            kept.setlist(key, values)
    facets = results.facets
    months = [
        (
            month,
            n,
            _address(kept, created_after=month.isoformat(), created_before=_month_end(month)),
        )
        for month, n in facets.months
    ]
    roles = [m.role for m in memberships.values()]
    context = {
        "form": form,
        "data": data,
        "results": results,
        "query": kept.urlencode(),
        "state_links": [(label, n, _address(kept, state=v)) for v, label, n in facets.states],
        "repo_links": [(repo, n, _address(kept, repo=repo)) for repo, n in facets.repos],
        "people_links": [
            (name, n, _address(kept, launched_by=pk)) for pk, name, n in facets.people
        ],
        "month_links": months,
        "page_links": [(n, _address(kept, page=str(n))) for n in range(1, results.pages + 1)],
        "hidden_filters": [
            (key, value)
            for key, values in kept.lists()
            if key not in {"q", "path"}
            for value in values
        ],
        "has_team": bool(memberships),
        "nav_may_launch": any(access.may_launch(role) for role in roles),
        "nav_in_team": bool(memberships),
        "nav_active": "search",
    }
    template = TEMPLATE
    if request.htmx and request.htmx.target == "search-results":
        template += "#results"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response
