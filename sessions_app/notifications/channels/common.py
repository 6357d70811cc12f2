"""What the chat formats share: the event's words and its buttons into the portal."""

from __future__ import annotations

from sessions_app.models import Event, EventKind

APPROVAL_KINDS = {EventKind.PLAN_AWAITING, EventKind.APPROVAL_OVERDUE}


def absolute(site_url: str, path: str) -> str:
    return f"{site_url.rstrip('/')}{path}"


def buttons(event: Event, site_url: str) -> list[tuple[str, str]]:
    """(label, URL) pairs. Approving stays in the portal, under the team's policy."""
    if not event.link:
        return []
    url = absolute(site_url, event.link)
    if event.kind in APPROVAL_KINDS:
        return [("Review the plan in the portal", url)]
    if event.session_id:
        return [("Open the session", url)]
    return [("Open in the portal", url)]
