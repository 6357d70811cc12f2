"""Google Chat incoming webhooks: a card with link buttons into the portal."""

from __future__ import annotations

from typing import Any

from sessions_app.models import Event
from sessions_app.notifications.channels.common import buttons


def payload(event: Event, site_url: str) -> dict[str, Any]:
    widgets: list[dict[str, Any]] = []
    if event.body:
        widgets.append({"textParagraph": {"text": event.body[:2000]}})
    links = buttons(event, site_url)
    if links:
        widgets.append(
            {
                "buttonList": {
                    "buttons": [
                        {"text": label, "onClick": {"openLink": {"url": url}}}
                        for label, url in links
                    ]
                }
            }
        )
    card = {"header": {"title": event.title[:200]}, "sections": [{"widgets": widgets}]}
    return {"text": event.title, "cardsV2": [{"cardId": f"event-{event.pk}", "card": card}]}
