"""Generic webhooks, signed as the Standard Webhooks specification says: `webhook-id`,
`webhook-timestamp` and `webhook-signature` (`v1,` and the base64 HMAC-SHA256 of
"id.timestamp.body" under the secret's base64 bytes after `whsec_`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from sessions_app.models import Delivery, Event

PAYLOAD_VERSION = 1


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def payload(event: Event, site_url: str) -> dict[str, Any]:
    """The versioned JSON body (docs/notifications.md, "Payloads")."""
    data: dict[str, Any] = {
        "event_id": event.pk,
        "team": {"id": event.team_id, "slug": event.team.slug, "name": event.team.name},
        "title": event.title,
        "body": event.body,
        "url": f"{site_url.rstrip('/')}{event.link}" if event.link else "",
        "occurred_at": event.occurred_at.isoformat(),
        **event.payload,
    }
    return {
        "type": event.kind,
        "version": PAYLOAD_VERSION,
        "timestamp": event.created_at.isoformat(),
        "data": data,
    }


def request(
    delivery: Delivery, secret: str, site_url: str, now: float | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload(delivery.event, site_url), separators=(",", ":")).encode()
    timestamp = int(now if now is not None else time.time())
    headers = {
        "webhook-id": delivery.webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, delivery.webhook_id, timestamp, body),
    }
    return body, headers
