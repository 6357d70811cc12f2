"""The analytics pages: one per team, and one across the user's teams, each with a CSV
per chart (docs/analytics.md). Outsiders get 404, like on every team page."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.http import Http404, HttpResponse, HttpResponseBadRequest, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from sessions_app.access import memberships_for_user
from sessions_app.analytics import charts, selectors
from sessions_app.analytics.forms import AnalyticsForm
from sessions_app.audit.export import cell
from sessions_app.models import Team
from sessions_app.sessions.filters import filter_menus, visible_connections
from sessions_app.sessions.forms import OUTSIDE_PORTAL, STATE_CHOICES
from sessions_app.teams.selectors import get_team_for_user
from sessions_app.web.request import AuthedRequest

PAGE = "sessions_app/analytics/page.html"


def _team_ids(request: AuthedRequest, slug: str | None) -> tuple[list[int], Team | None]:
    if slug is not None:
        team = get_team_for_user(request.user, slug)
        return [team.pk], team
    team_ids = sorted(memberships_for_user(request.user))
    if not team_ids:
        raise Http404("You are in no team.")
    return team_ids, None


def _report(request: AuthedRequest, team_ids: list[int], team: Team | None) -> dict[str, Any]:
    form = AnalyticsForm(request.GET)
    data = form.cleaned_or_empty()
    connections = visible_connections(team_ids)
    if data.get("connection") and data["connection"] not in {c.pk for c in connections}:
        form.ignore(data, "connection", "no such connection in your teams.")
    start, end, weekly = form.window(data)
    by_team = team is None and len(team_ids) > 1
    figures = selectors.cached_figures(team_ids, data, start, end, by_team=by_team)
    return {
        "form": form,
        "data": data,
        "start": start,
        "end": end,
        "connections": connections,
        "charts": charts.all_charts(figures, weekly=weekly, by_team=by_team),
        "figures": figures,
    }


def _query(request: AuthedRequest) -> str:
    query = QueryDict(mutable=True)
    for key, values in request.GET.lists():
        if kept := [v for v in values if v]:
            query.setlist(key, kept)
    return query.urlencode()


def _page(request: AuthedRequest, slug: str | None) -> HttpResponse:
    team_ids, team = _team_ids(request, slug)
    report = _report(request, team_ids, team)
    repo_menu, people = filter_menus(team_ids, report["connections"])
    repos = set(repo_menu)
    if report["data"].get("repo"):
        repos.add(report["data"]["repo"])
    csv_base = (
        reverse("sessions_app:team-analytics", args=[team.slug])
        if team
        else reverse("sessions_app:analytics")
    )
    context = {
        **report,
        "team": team,
        "repos": sorted(repos),
        "people": people,
        "outside_portal": OUTSIDE_PORTAL,
        "state_choices": STATE_CHOICES,
        "selected_states": set(report["data"].get("state") or []),
        "query": _query(request),
        "csv_base": csv_base,
        "nav_active": "analytics",
    }
    return render(request, PAGE, context)


def _csv(request: AuthedRequest, slug: str | None, chart: str) -> HttpResponse:
    if chart not in charts.CHART_SLUGS:
        raise Http404("No such chart.")
    team_ids, team = _team_ids(request, slug)
    report = _report(request, team_ids, team)
    if report["form"].problems:
        # A file without the filter asked for would hold other figures than were meant.
        text = " ".join(["Nothing was exported.", *report["form"].problems])
        return HttpResponseBadRequest(text, content_type="text/plain; charset=utf-8")
    found = next((c for c in report["charts"] if c.slug == chart), None)
    if found is None:
        raise Http404("No such chart on this page.")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(found.header)
    writer.writerows([cell(value) for value in row] for row in found.rows)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    name = f"analytics-{team.slug if team else 'all'}-{chart}-{report['start']}-{report['end']}"
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


@require_GET
def team_analytics(request: AuthedRequest, slug: str) -> HttpResponse:
    return _page(request, slug)


@require_GET
def analytics(request: AuthedRequest) -> HttpResponse:
    return _page(request, None)


@require_GET
def team_analytics_csv(request: AuthedRequest, slug: str, chart: str) -> HttpResponse:
    return _csv(request, slug, chart)


@require_GET
def analytics_csv(request: AuthedRequest, chart: str) -> HttpResponse:
    return _csv(request, None, chart)
