"""Slack incoming webhooks: Block Kit with link buttons into the portal."""

from __future__ import annotations

from typing import Any

from sessions_app.models import Event
from sessions_app.notifications.channels.common import buttons


def payload(event: Event, site_url: str) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "plain_text", "text": event.title[:3000]}}
    ]
    if event.body:
        blocks.append(
            {"type": "context", "elements": [{"type": "plain_text", "text": event.body[:2000]}]}
        )
    links = buttons(event, site_url)
    if links:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": label}, "url": url}
                    for label, url in links
                ],
            }
        )
    return {"text": event.title, "blocks": blocks}
