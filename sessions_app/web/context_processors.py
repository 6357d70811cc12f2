from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def portal(request: HttpRequest) -> dict[str, Any]:
    """What the layout needs on every page: the user's teams, for navigation."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_teams": []}
    from sessions_app.teams.selectors import teams_for_user

    return {"nav_teams": teams_for_user(user)}
