"""The one way the portal posts to a team channel: a checked address, no redirects, a total
deadline and a size cap (docs/notifications.md, "Destinations")."""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.conf import settings

from sessions_app.notifications.channels import DeliveryError


@dataclass
class Response:
    status: int
    duration_ms: int


def _allowed_anywhere(host: str) -> bool:
    return settings.WEBHOOK_ALLOW_PRIVATE or host.lower() in {
        h.lower() for h in settings.WEBHOOK_ALLOWED_HOSTS
    }


def check_destination(url: str) -> None:
    """Refuse what is not http(s) to a public address, unless the operator allows it."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise DeliveryError("The address must be an http or https URL.", retryable=False)
    host = parts.hostname
    if _allowed_anywhere(host):
        return
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DeliveryError(f"The host name {host} does not resolve.") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global or address.is_multicast:
            raise DeliveryError(
                f"{host} resolves to a private or loopback address ({address}); the operator "
                "must allow it (WEBHOOK_ALLOWED_HOSTS or WEBHOOK_ALLOW_PRIVATE).",
                retryable=False,
            )


def post(url: str, body: bytes, headers: dict[str, str]) -> Response:
    """POST within WEBHOOK_TIMEOUT_SECONDS all told; a 2xx answer or a DeliveryError."""
    if len(body) > settings.WEBHOOK_MAX_BYTES:
        raise DeliveryError(
            f"The message is {len(body)} bytes, over the {settings.WEBHOOK_MAX_BYTES} cap.",
            retryable=False,
        )
    check_destination(url)
    deadline = settings.WEBHOOK_TIMEOUT_SECONDS
    started = time.monotonic()
    try:
        with requests.post(
            url,
            data=body,
            headers={"Content-Type": "application/json", **headers},
            timeout=(min(5.0, deadline), deadline),
            allow_redirects=False,
            stream=True,
        ) as answer:
            read = 0
            # Reading the answer (capped) frees the connection; a receiver that drips it
            # out slowly still meets the total deadline.
            for chunk in answer.iter_content(8192):
                read += len(chunk)
                if read > settings.WEBHOOK_MAX_BYTES:
                    break
                if time.monotonic() - started > deadline:
                    raise DeliveryError(f"No complete answer within {deadline:g} s.")
            status = answer.status_code
    except requests.Timeout as exc:
        raise DeliveryError(f"No answer within {deadline:g} s.") from exc
    except requests.RequestException as exc:
        raise DeliveryError(f"Could not reach the receiver ({type(exc).__name__}).") from exc
    duration_ms = int((time.monotonic() - started) * 1000)
    if time.monotonic() - started > deadline:
        raise DeliveryError(f"No complete answer within {deadline:g} s.", status=status)
    if not 200 <= status < 300:
        raise DeliveryError(f"The receiver answered {status}.", status=status)
    return Response(status, duration_ms)
