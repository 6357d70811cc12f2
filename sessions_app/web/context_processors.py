from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest

# The header's count of plans waiting for the user is kept this long: one count query per
# person per quarter minute at most, whatever they open. Their own approvals and the
# inbox's poll refresh it at once (`approvals_waiting_changed`).
APPROVALS_TTL = 15


def _approvals_key(user_id: int) -> str:
    return f"nav:approvals-waiting:{user_id}"


def approvals_waiting(user: Any, *, fresh: int | None = None) -> int:
    """How many plans wait for this user's approval (the inbox's selector, counted)."""
    key = _approvals_key(user.pk)
    if fresh is not None:
        cache.set(key, fresh, APPROVALS_TTL)
        return fresh
    count = cache.get(key)
    if count is None:
        from sessions_app.sessions.selectors import approvable_sessions_for_user

        count = approvable_sessions_for_user(user).order_by().count()
        cache.set(key, count, APPROVALS_TTL)
    return int(count)


def approvals_waiting_changed(user: Any) -> None:
    cache.delete(_approvals_key(user.pk))


def portal(request: HttpRequest) -> dict[str, Any]:
    """What the layout needs on every page: the user's teams, for navigation, the number of
    plans waiting for them, and whether they may launch (a viewer may not, so the layout
    offers no Launch link). The last two are read only if the page shows the header."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_teams": [], "nav_may_launch": False, "nav_in_team": False}
    from sessions_app import access
    from sessions_app.teams.selectors import teams_for_user

    waiting: Callable[[], int] = lambda: approvals_waiting(user)  # noqa: E731 - lazy.
    # A view that already knows sets `nav_may_launch` and `nav_in_team` itself.
    may_launch: Callable[[], bool] = lambda: access.launches_in_some_team(user)  # noqa: E731
    # Templates and analytics belong to teams: someone in none is not offered them.
    in_team: Callable[[], bool] = lambda: teams_for_user(user).exists()  # noqa: E731
    return {
        "nav_teams": teams_for_user(user),
        "nav_in_team": in_team,
        "nav_approvals_waiting": waiting,
        "nav_may_launch": may_launch,
    }
