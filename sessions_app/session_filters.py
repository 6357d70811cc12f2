"""The sessions list's query: the user's sessions, filtered, counted per state, paged.

Everything here is scoped to the teams the user belongs to. The list must stay quick with
100,000 cached sessions, so:

- rows are ordered by `(-create_time, -id)`, which the `(team, -create_time, -id)` index
  serves, and a page loads its rows with one query (launcher and connection joined);
- the counts per state are one GROUP BY over the filtered sessions, and the page total is
  their sum (a state filter only narrows which counts are added up), so no separate
  COUNT(*) runs;
- date filters compare `create_time` with the bounds of the days in the portal's time
  zone, so an index on the column still applies (a `__date` lookup would wrap it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.functional import cached_property

from sessions_app.forms import OUTSIDE_PORTAL
from sessions_app.models import Session, SessionState
from sessions_app.models.jules import ATTENTION_STATES

PAGE_SIZE = 50
# The columns a list row shows; everything else (raw JSON, the prompt's full text is
# needed for the title fallback) stays in the database.
ROW_FIELDS = (
    "id",
    "team_id",
    "connection_id",
    "remote_id",
    "title",
    "prompt",
    "state",
    "repo",
    "starting_branch",
    "create_time",
    "last_activity_at",
    "pr_url",
    "archived",
    "deleted_remotely",
    "launched_by_id",
    "launched_by__username",
    "connection__label",
)


def _day_start(day: dt.date) -> dt.datetime | None:
    """Midnight of the day in the portal's time zone; None at the calendar's edges."""
    try:
        return timezone.make_aware(dt.datetime.combine(day, dt.time.min))
    except (OverflowError, ValueError):
        return None


def _next_day(day: dt.date) -> dt.date | None:
    return day + dt.timedelta(days=1) if day < dt.date.max else None


def filter_sessions(
    team_ids: Iterable[int], data: dict[str, Any]
) -> tuple[QuerySet[Session], list[str] | None]:
    """The sessions matching every filter but the state ones, and the states to keep.

    The state filters are returned apart (None means every state) so that the caller can
    count per state before applying them.
    """
    qs = Session.objects.filter(team_id__in=list(team_ids))
    archived = data.get("archived") or ""
    if archived == "only":
        qs = qs.filter(archived=True)
    elif archived != "include":
        qs = qs.filter(archived=False)
    if data.get("repo"):
        qs = qs.filter(repo=data["repo"])
    if data.get("connection"):
        qs = qs.filter(connection_id=data["connection"])
    who = data.get("launched_by") or ""
    if who == OUTSIDE_PORTAL:
        qs = qs.filter(launched_by__isnull=True)
    elif who:
        qs = qs.filter(launched_by_id=int(who))
    if data.get("created_after") and (start := _day_start(data["created_after"])):
        qs = qs.filter(create_time__gte=start)
    before = data.get("created_before")
    end = _day_start(day) if before and (day := _next_day(before)) else None
    if end is not None:
        qs = qs.filter(create_time__lt=end)
    if data.get("q"):
        text = data["q"].strip()
        qs = qs.filter(Q(title__icontains=text) | Q(prompt__icontains=text))
    states: set[str] | None = None
    if data.get("state"):
        states = set(data["state"])
    if data.get("attention"):
        states = (states if states is not None else set(SessionState.values)) & set(
            ATTENTION_STATES
        )
    return qs, sorted(states) if states is not None else None


def count_states(qs: QuerySet[Session]) -> dict[str, int]:
    """Sessions per state in one GROUP BY."""
    rows = qs.order_by().values_list("state").annotate(n=Count("id")).values_list("state", "n")
    return dict(rows)


class KnownCountPaginator(Paginator):
    """A paginator told its total, so that it never runs COUNT(*) itself."""

    def __init__(self, object_list: Any, per_page: int, *, total: int) -> None:
        super().__init__(object_list, per_page)
        self._total = total

    @cached_property
    def count(self) -> int:
        return self._total


def page_of_sessions(
    qs: QuerySet[Session], states: list[str] | None, counts: dict[str, int], number: Any
) -> Page:
    if states is not None:
        qs = qs.filter(state__in=states)
        total = sum(counts.get(state, 0) for state in states)
    else:
        total = sum(counts.values())
    rows = (
        qs.select_related("launched_by", "connection")
        .only(*ROW_FIELDS)
        .order_by("-create_time", "-id")
    )
    return KnownCountPaginator(rows, PAGE_SIZE, total=total).get_page(number)
