"""The analytics pages' reads: aggregates of the rollup (`SessionFacts`), scoped to the
user's teams, over a date range and the list's filters (docs/analytics.md).

Every figure is a GROUP BY or a conditional count over the `facts_team_day` index; no
activity is read at request time. Six queries a page (seven across teams), whatever
the range; `cached_figures` keeps them while the teams' rollup rows stay the same.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import caches
from django.db.models import Avg, Count, F, OuterRef, Q, QuerySet, Subquery, Sum

from sessions_app.models import SessionFacts, SessionState, Team
from sessions_app.models.jules import ATTENTION_STATES
from sessions_app.sessions.forms import DELETED, OUTSIDE_PORTAL

# (label, lower bound in seconds inclusive, upper bound exclusive or None)
TIME_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("under 1 min", 0, 60),
    ("1-5 min", 60, 300),
    ("5-15 min", 300, 900),
    ("15-60 min", 900, 3600),
    ("1-4 h", 3600, 14400),
    ("4-24 h", 14400, 86400),
    ("over 1 day", 86400, None),
)
LINE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("no change", 0, 1),
    ("1-10 lines", 1, 11),
    ("11-50 lines", 11, 51),
    ("51-200 lines", 51, 201),
    ("201-1,000 lines", 201, 1001),
    ("over 1,000 lines", 1001, None),
)
PLAN_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("no plan", 0, 1),
    ("1 plan", 1, 2),
    ("2 plans", 2, 3),
    ("3 plans", 3, 4),
    ("4 or more", 4, None),
)
TIME_METRICS = (
    "seconds_to_plan",
    "seconds_awaiting_approval",
    "seconds_awaiting_answers",
    "seconds_duration",
)
TOP = 15
# Cached figures live in each process' memory, keyed by what they show (docs/analytics.md).
LOCAL_CACHE = "local"
# How long cached figures may lag behind a change the rollup does not see (seconds).
FIGURES_TTL = 60


@dataclass(frozen=True)
class Group:
    """One row of a breakdown: a label and its counts."""

    key: Any
    label: str
    total: int
    completed: int = 0
    failed: int = 0
    with_pr: int = 0
    average: float | None = None


@dataclass
class Figures:
    """Everything the page charts, as plain numbers."""

    start: dt.date
    end: dt.date
    total: int = 0
    completed: int = 0
    failed: int = 0
    with_pr: int = 0
    outside: int = 0
    regenerated: int = 0
    lines_added: int = 0
    lines_removed: int = 0
    averages: dict[str, float | None] = field(default_factory=dict)
    histograms: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    per_day: dict[dt.date, dict[str, int]] = field(default_factory=dict)
    repositories: list[Group] = field(default_factory=list)
    people: list[Group] = field(default_factory=list)
    approvers: list[Group] = field(default_factory=list)
    failures: list[Group] = field(default_factory=list)
    teams: list[Group] = field(default_factory=list)


def _range_q(name: str, low: int, high: int | None) -> Q:
    q = Q(**{f"{name}__gte": low})
    return q & Q(**{f"{name}__lt": high}) if high is not None else q


def scoped_facts(
    team_ids: Iterable[int], data: dict[str, Any], start: dt.date, end: dt.date
) -> QuerySet[SessionFacts]:
    """The rollup rows of the user's teams in the range, with the list's filters."""
    qs = SessionFacts.objects.filter(
        team_id__in=list(team_ids), created_day__gte=start, created_day__lte=end
    )
    if data.get("repo"):
        qs = qs.filter(repo=data["repo"])
    if data.get("connection"):
        qs = qs.filter(connection_id=data["connection"])
    who = data.get("launched_by") or ""
    if who == OUTSIDE_PORTAL:
        qs = qs.filter(outside_portal=True)
    elif who:
        qs = qs.filter(launched_by_id=int(who))
    # Archived sessions count unless asked otherwise: analytics is the team's history.
    archived = data.get("archived") or ""
    if archived == "hide":
        qs = qs.filter(session__archived=False)
    elif archived == "only":
        qs = qs.filter(session__archived=True)
    if data.get("q"):
        text = data["q"].strip()
        qs = qs.filter(Q(session__title__icontains=text) | Q(session__prompt__icontains=text))
    states = set(data.get("state") or [])
    if data.get("attention"):
        states = (states or set(SessionState.values)) & set(ATTENTION_STATES)
    if states:
        wanted = Q(state__in=states - {DELETED}, deleted_remotely=False)
        if DELETED in states:
            wanted |= Q(deleted_remotely=True)
        qs = qs.filter(wanted)
    elif data.get("attention"):
        qs = qs.none()
    return qs


def _outcomes() -> dict[str, Count]:
    return {
        "total": Count("pk"),
        "completed": Count("pk", filter=Q(state=SessionState.COMPLETED)),
        "failed": Count("pk", filter=Q(state=SessionState.FAILED)),
        "with_pr": Count("pk", filter=Q(has_pr=True)),
    }


def _groups(rows: Iterable[dict[str, Any]], key: str, label: str, empty: str) -> list[Group]:
    return [
        Group(
            key=row[key],
            label=row[label] or empty,
            total=row["total"],
            completed=row["completed"],
            failed=row["failed"],
            with_pr=row["with_pr"],
        )
        for row in rows
    ]


def figures(
    team_ids: Iterable[int],
    data: dict[str, Any],
    start: dt.date,
    end: dt.date,
    *,
    by_team: bool = False,
) -> Figures:
    teams = list(team_ids)
    qs = scoped_facts(teams, data, start, end)
    result = Figures(start=start, end=end)
    aggregates: dict[str, Any] = {
        **_outcomes(),
        "outside": Count("pk", filter=Q(outside_portal=True)),
        "regenerated": Count("pk", filter=Q(plans_generated__gt=1)),
    }
    for name in TIME_METRICS:
        aggregates[f"avg_{name}"] = Avg(name)
        for i, (_, low, high) in enumerate(TIME_BUCKETS):
            aggregates[f"{name}_{i}"] = Count("pk", filter=_range_q(name, low, high))
    for i, (_, low, high) in enumerate(PLAN_BUCKETS):
        aggregates[f"plans_{i}"] = Count("pk", filter=_range_q("plans_generated", low, high))
    for i, (_, low, high) in enumerate(LINE_BUCKETS):
        # Only sessions that produced a result count: a running one has no change yet.
        aggregates[f"lines_{i}"] = Count(
            "pk",
            filter=_range_q("size", low, high) & Q(state=SessionState.COMPLETED),
        )
    totals = qs.annotate(size=F("lines_added") + F("lines_removed")).aggregate(
        **aggregates, added=Sum("lines_added"), removed=Sum("lines_removed")
    )
    result.total, result.completed = totals["total"], totals["completed"]
    result.failed, result.with_pr = totals["failed"], totals["with_pr"]
    result.outside, result.regenerated = totals["outside"], totals["regenerated"]
    result.lines_added, result.lines_removed = totals["added"] or 0, totals["removed"] or 0
    for name in TIME_METRICS:
        result.averages[name] = totals[f"avg_{name}"]
        result.histograms[name] = [
            (label, totals[f"{name}_{i}"]) for i, (label, _, _) in enumerate(TIME_BUCKETS)
        ]
    result.histograms["plans_generated"] = [
        (label, totals[f"plans_{i}"]) for i, (label, _, _) in enumerate(PLAN_BUCKETS)
    ]
    result.histograms["change_size"] = [
        (label, totals[f"lines_{i}"]) for i, (label, _, _) in enumerate(LINE_BUCKETS)
    ]
    for day, state, n in qs.values_list("created_day", "state").annotate(n=Count("pk")):
        result.per_day.setdefault(day, {})[state] = n
    result.repositories = _groups(
        qs.values("repo").annotate(**_outcomes()).order_by("-total", "repo"),
        "repo",
        "repo",
        "(no repository)",
    )
    result.people = _groups(
        qs.values("launched_by_id", "launched_by__username")
        .annotate(**_outcomes())
        .order_by("-total", "launched_by__username"),
        "launched_by_id",
        "launched_by__username",
        "Outside the portal",
    )
    result.approvers = [
        Group(
            key=row["approved_by_id"],
            label=row["approved_by__username"] or "In Jules or automatically",
            total=row["total"],
            average=row["average"],
        )
        for row in qs.filter(seconds_awaiting_approval__isnull=False)
        .values("approved_by_id", "approved_by__username")
        .annotate(total=Count("pk"), average=Avg("seconds_awaiting_approval"))
        .order_by("-total", "approved_by__username")
    ]
    result.failures = [
        Group(
            key=row["failure_reason"],
            label=row["failure_reason"] or "(no reason given)",
            total=row["total"],
        )
        for row in qs.filter(state=SessionState.FAILED)
        .values("failure_reason")
        .annotate(total=Count("pk"))
        .order_by("-total", "failure_reason")
    ]
    if by_team:
        result.teams = _groups(
            qs.values("team_id", "team__name").annotate(**_outcomes()).order_by("team__name"),
            "team_id",
            "team__name",
            "",
        )
    return result


def facts_version(team_ids: Iterable[int]) -> list[tuple[int, Any]]:
    """Each team's newest rollup change (one probe of `facts_team_computed` per team)."""
    newest = (
        SessionFacts.objects.filter(team=OuterRef("pk"))
        .order_by("-computed_at")
        .values("computed_at")[:1]
    )
    return list(
        Team.objects.filter(pk__in=list(team_ids))
        .annotate(newest=Subquery(newest))
        .order_by("pk")
        .values_list("pk", "newest")
    )


def cached_figures(
    team_ids: Iterable[int],
    data: dict[str, Any],
    start: dt.date,
    end: dt.date,
    *,
    by_team: bool = False,
) -> Figures:
    """`figures(...)`, from the cache while no rollup row of these teams has changed.

    The sync stamps `computed_at` on every row it changes, so new figures show at once;
    what the rollup does not hold (a session archived in the portal, for the archive
    filter) shows within `FIGURES_TTL`.
    """
    teams = sorted(set(team_ids))
    filters = sorted((key, str(value)) for key, value in data.items() if value)
    raw = repr((teams, filters, start, end, by_team, facts_version(teams))).encode()
    key = "analytics:figures:" + hashlib.sha256(raw).hexdigest()
    local = caches[LOCAL_CACHE]
    found = local.get(key)
    if found is not None:
        return found
    result = figures(teams, data, start, end, by_team=by_team)
    local.set(key, result, FIGURES_TTL)
    return result
