"""Microsoft Teams webhooks (Workflows): an Adaptive Card with link buttons into the portal."""

from __future__ import annotations

from typing import Any

from sessions_app.models import Event
from sessions_app.notifications.channels.common import buttons


def payload(event: Event, site_url: str) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": event.title, "weight": "Bolder", "wrap": True}
    ]
    if event.body:
        body.append({"type": "TextBlock", "text": event.body[:2000], "wrap": True})
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": [
            {"type": "Action.OpenUrl", "title": label, "url": url}
            for label, url in buttons(event, site_url)
        ],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }
