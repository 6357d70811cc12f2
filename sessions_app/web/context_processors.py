from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def portal(request: HttpRequest) -> dict[str, Any]:
    """What the layout needs on every page: the user's teams, for navigation, and whether
    they may launch (a viewer may not, so the layout offers no Launch link)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_teams": [], "nav_may_launch": False}
    from sessions_app.models import Membership, Role
    from sessions_app.sessions.selectors import teams_for_user

    def may_launch() -> bool:
        # Called by the template, so a page that shows no navigation asks nothing; a view
        # that already knows sets `nav_may_launch` itself.
        roles = [Role.MEMBER, Role.APPROVER, Role.ADMIN]
        return Membership.objects.filter(user=user, role__in=roles).exists()

    return {"nav_teams": teams_for_user(user), "nav_may_launch": may_launch}
