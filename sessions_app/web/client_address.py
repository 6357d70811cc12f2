"""The client's address, as the proxies in front of the portal report it.

Each proxy appends the address it received the request from to `X-Forwarded-For`, so with
N trusted proxies the client is the N-th entry from the right; entries further left are
whatever the client chose to send. docs/operations.md describes the setting.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _valid(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_address(request: HttpRequest) -> str | None:
    remote = _valid(request.META.get("REMOTE_ADDR"))
    count: int = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [hop for hop in hops if hop]
    if len(hops) < count:
        # Not through every proxy (a health check from inside, say): the peer is the client.
        return remote
    return _valid(hops[-count]) or remote
