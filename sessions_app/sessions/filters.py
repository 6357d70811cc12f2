"""The sessions list's query: the user's sessions, filtered, counted per state, paged.

Everything here is scoped to the teams the user belongs to. The list must stay quick with
100,000 cached sessions (docs/performance.md, "List page"), so:

- rows are ordered by `(-create_time, -id)`. A page first picks its 50 ids, which on
  PostgreSQL the covering `session_created_cover` index answers without reading the table
  (so an offset skips index entries, not rows), then loads those rows with their launcher
  in the same query. Pages past the middle count from the other end, so no
  offset is ever more than half the list;
- the counts per state are one GROUP BY over the filtered sessions, and the page total is
  their sum (a state filter only narrows which counts are added up), so no separate
  COUNT(*) runs. The counts are cached under a key made of the filters, the teams'
  newest transition (the sync records one for every new session, change of state and
  deletion) and a per-team stamp the portal's own writes (archive, unarchive, delete)
  renew; so they follow every change that moves a count, and lag at most `COUNTS_TTL`
  behind one made any other way (a session archived in Jules itself, for instance). The
  table of rows is a cached fragment under that key plus the connections' newest session
  write (`synced_at`), the address, the user's roles and the minute. While one of the
  teams' connections syncs, a sync write renews both at most every `SYNC_SETTLE`
  seconds, so a large account's sync, which writes many times a second, does not make
  every page count and render again (docs/performance.md, "Pages while a large account
  syncs (issue 19)"); the portal's own writes still show at once;
- date filters compare `create_time` with the bounds of the days in the portal's time
  zone, so an index on the column still applies (a `__date` lookup would wrap it); the
  free-text search is served on PostgreSQL by trigram indexes (migration 0004).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar, overload

from django.contrib.auth import get_user_model
from django.core.cache import cache, caches
from django.core.paginator import Page, Paginator
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Value
from django.utils import timezone
from django.utils.functional import cached_property

from sessions_app.models import (
    JulesConnection,
    Session,
    SessionState,
    SessionTransition,
    Source,
)
from sessions_app.models.jules import ATTENTION_STATES, SyncStatus
from sessions_app.sessions.forms import DELETED, OUTSIDE_PORTAL
from sessions_app.teams.selectors import is_service_bot, service_bot_label

T = TypeVar("T")
PAGE_SIZE = 50
# How long counts per state may be served from the cache at most (seconds).
COUNTS_TTL = 60
# While a connection syncs, how long counts and rows may lag its writes (seconds).
SYNC_SETTLE = 3.0
# How long the filter menus' repositories and people may be (seconds).
MENUS_TTL = 60
# The per-process cache (settings.CACHES) of everything here but the stamps.
LOCAL_CACHE = "local"
ORDER = ("-create_time", "-id")
REVERSED = ("create_time", "id")
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
        # A session deleted on Jules needs nobody's attention, whatever its last state.
        states = (states if states is not None else set(SessionState.values)) & set(
            ATTENTION_STATES
        )
    return qs, sorted(states) if states is not None else None


def in_states(qs: QuerySet[Session], states: Iterable[str]) -> QuerySet[Session]:
    """The sessions in these states, `DELETED` standing for those deleted on Jules (which
    are in no other state's count)."""
    wanted = set(states)
    q = Q(state__in=sorted(wanted - {DELETED}), deleted_remotely=False)
    if DELETED in wanted:
        q |= Q(deleted_remotely=True)
    return qs.filter(q)


def count_states(qs: QuerySet[Session]) -> dict[str, int]:
    """Sessions per state; those deleted on Jules count as `DELETED`, not in the state
    they were last seen in.

    One query of two GROUP BYs: every session per state, which the narrow
    `(team, archived, state)` index answers alone (COUNT(*) rather than COUNT(id)), and
    the deleted ones per state, from the partial index of deleted sessions; the second
    is taken off the first. Grouping by the flag instead would read the table.
    """

    def per_state(sessions: QuerySet[Session], deleted: bool) -> QuerySet[Any]:
        return (
            sessions.order_by()
            .annotate(deleted=Value(deleted))
            .values_list("state", "deleted")
            .annotate(n=Count("*"))
        )

    counts: dict[str, int] = {}
    rows = per_state(qs, False).union(per_state(qs.filter(deleted_remotely=True), True), all=True)
    for state, deleted, n in rows:
        if deleted:
            counts[state] = counts.get(state, 0) - n
            counts[DELETED] = counts.get(DELETED, 0) + n
        else:
            counts[state] = counts.get(state, 0) + n
    return {state: n for state, n in counts.items() if n}


def visible_connections(team_ids: Iterable[int]) -> list[JulesConnection]:
    """The teams' connections, each with what the list's cache keys follow.

    `newest_session_sync`: the time of the connection's newest session write (the sync
    stamps `synced_at` on every row it changes, and changes a row only when the service's
    data for it changed). `newest_transition`: the id of the team's newest transition (the
    sync records one, in the same transaction, for every new session, change of state and
    deletion: whatever moves a count). Each is one probe of an index.
    """
    newest_sync = (
        Session.objects.filter(connection=OuterRef("pk"))
        .order_by("-synced_at")
        .values("synced_at")[:1]
    )
    newest_transition = (
        SessionTransition.objects.filter(team=OuterRef("team"))
        .order_by("-observed_at")
        .values("pk")[:1]
    )
    return list(
        JulesConnection.objects.filter(team_id__in=list(team_ids))
        .select_related("team")
        .annotate(
            newest_session_sync=Subquery(newest_sync),
            newest_transition=Subquery(newest_transition),
        )
        .order_by("team__name", "label")
    )


def _people(team_ids: list[int]) -> list[tuple[int, str]]:
    """People by name, then the service tokens' bots, labelled as tokens."""
    users = (
        get_user_model()
        .objects.filter(memberships__team_id__in=team_ids)
        .distinct()
        .annotate(bot=is_service_bot("pk"))
        .order_by("bot", "username")
        .values_list("id", "username", "bot")
    )
    return [(pk, service_bot_label(name) if bot else name) for pk, name, bot in users]


def filter_menus(
    team_ids: Iterable[int], connections: list[JulesConnection]
) -> tuple[list[str], list[tuple[int, str]]]:
    """The repositories and the people the filter menus offer, cached for `MENUS_TTL`.

    The key follows the teams' connections and their last sync of sources, so a synced
    repository shows at once; a new team member shows in "Launched by" within the TTL.
    """
    teams = sorted(set(team_ids))
    syncs = [(c.pk, c.created_at, c.last_sources_sync_at) for c in connections]
    raw = repr((teams, syncs)).encode()
    key = "session-list:menus:" + hashlib.sha256(raw).hexdigest()
    local = caches[LOCAL_CACHE]
    cached = local.get(key)
    if cached is not None:
        return cached
    sources = Source.objects.filter(connection__team_id__in=teams)
    repos = sorted(
        {
            f"{owner}/{repo}" if owner else source_id
            for owner, repo, source_id in sources.values_list("owner", "repo", "source_id")
        }
    )
    menus = (repos, _people(teams))
    local.set(key, menus, MENUS_TTL)
    return menus


def _stamp_key(team_id: int) -> str:
    return f"session-list:stamp:{team_id}"


def sessions_changed(team_ids: Iterable[int]) -> None:
    """Say that the portal itself changed some of these teams' sessions (archived one,
    for instance): the list's cached counts for these teams are stale from now on."""
    cache.set_many({_stamp_key(t): uuid.uuid4().hex for t in set(team_ids)}, COUNTS_TTL * 2)


def _now() -> float:
    return time.monotonic()


def cached_count_states(
    qs: QuerySet[Session],
    team_ids: Iterable[int],
    data: dict[str, Any],
    connections: list[JulesConnection],
) -> tuple[dict[str, int], str]:
    """`count_states(qs)`, from the cache while nothing it depends on has changed, and a
    digest of that state of the data (a key for whatever else shows the same sessions).

    `qs` must be `filter_sessions(team_ids, data)`'s and `connections` the teams' own,
    as `visible_connections` returns them. One cache round trip on a hit.
    """
    teams = sorted(set(team_ids))
    filters = sorted(
        (key, str(value))
        for key, value in data.items()
        if value and key not in ("state", "attention")
    )
    # Counts move only with a transition (or the portal's own writes: the stamps), so a
    # sync write that brings a session's new activities keeps them; the rows, whose
    # version this also returns, follow every write.
    moves = [(c.pk, c.created_at, getattr(c, "newest_transition", None)) for c in connections]
    writes = [getattr(c, "newest_session_sync", None) for c in connections]
    syncing = any(c.sync_status == SyncStatus.SYNCING for c in connections)
    raw = repr((teams, filters)).encode()
    key = "session-list:counts:" + hashlib.sha256(raw).hexdigest()
    stamp_keys = [_stamp_key(t) for t in teams]
    # The stamps are shared by every process (the default cache); what they validate is
    # keyed by its content, so it lives in each process' memory.
    found = cache.get_many(stamp_keys)
    stamps = [found.get(k) for k in stamp_keys]
    local = caches[LOCAL_CACHE]
    now = _now()
    cached = local.get(key)
    if cached is not None and cached[0] == stamps:
        seen_moves, seen_writes, counts, at = cached[1:]
        # While a sync writes, what was counted and rendered a moment ago still stands.
        settled = syncing and now - at < SYNC_SETTLE
        if settled or (seen_moves == moves and seen_writes == writes):
            return dict(counts), _data_version(key, stamps, seen_moves, seen_writes)
        if seen_moves == moves:
            local.set(key, (stamps, moves, writes, counts, now), COUNTS_TTL)
            return dict(counts), _data_version(key, stamps, moves, writes)
    counts = count_states(qs)
    local.set(key, (stamps, moves, writes, counts, now), COUNTS_TTL)
    return counts, _data_version(key, stamps, moves, writes)


def _data_version(key: str, *parts: Any) -> str:
    return hashlib.sha256(repr((key, *parts)).encode()).hexdigest()[:20]


class LazyList(Sequence[T]):
    """A list read on first use, so that a page whose rows come from a cached fragment
    never queries them."""

    def __init__(self, load: Callable[[], list[T]]) -> None:
        self._load = load
        self._items: list[T] | None = None

    @property
    def items(self) -> list[T]:
        if self._items is None:
            self._items = self._load()
        return self._items

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        return self.items[index]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)


def _page_rows(qs: QuerySet[Session], total: int) -> Callable[[int, int], list[Session]]:
    """A reader of rows `bottom:top` in the list's order, with their launcher.

    The page's ids come first (a subquery the covering index answers); past the middle of
    the list they are read from its end in the reverse order, then put back in order.
    """

    def read(bottom: int, top: int) -> list[Session]:
        if top <= bottom:
            return []
        from_end = bottom > total // 2
        if from_end:
            ids = qs.order_by(*REVERSED).values("pk")[max(0, total - top) : total - bottom]
        else:
            ids = qs.order_by(*ORDER).values("pk")[bottom:top]
        return list(
            Session.objects.filter(pk__in=ids)
            .select_related("launched_by")
            .only(*ROW_FIELDS)
            .order_by(*ORDER)
        )

    return read


class KnownCountPaginator(Paginator):
    """A paginator told its total, so that it never runs COUNT(*) itself, and that reads a
    page's rows through `read(bottom, top)` instead of slicing a queryset."""

    def __init__(
        self, read: Callable[[int, int], list[Session]], per_page: int, *, total: int
    ) -> None:
        super().__init__([], per_page)
        self._read = read
        self._total = total

    @cached_property
    def count(self) -> int:
        return self._total

    def page(self, number: Any) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = min(bottom + self.per_page, self.count)
        return Page(LazyList(lambda: self._read(bottom, top)), number, self)


def page_of_sessions(
    qs: QuerySet[Session], states: list[str] | None, counts: dict[str, int], number: Any
) -> Page:
    if states is not None:
        qs = in_states(qs, states)
        total = sum(counts.get(state, 0) for state in states)
    else:
        total = sum(counts.values())
    return KnownCountPaginator(_page_rows(qs, total), PAGE_SIZE, total=total).get_page(number)


def created_bounds(data: dict[str, Any]) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The `create_time` bounds of the date filters, as `filter_sessions` applies them (for
    the search's documents, which copy the creation time: docs/search.md)."""
    after, before = data.get("created_after"), data.get("created_before")
    start = _day_start(after) if after else None
    end = _day_start(day) if before and (day := _next_day(before)) else None
    return start, end
