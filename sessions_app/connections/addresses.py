"""Where the portal may send a connection's requests: the operator's `JULES_API_BASE_URL`
and `JULES_ALLOWED_BASE_URLS`, never an address a team chose (docs/reliability.md#jules-address).

Addresses compare as scheme, host, port and path, exactly; an allow-list entry may write
its port as `*` (a simulator on an ephemeral loopback port). A query, a fragment, user
info or a backslash never matches, so nothing can be appended to an allowed address.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit

from django.conf import settings

from sessions_app.access import ActionNotAllowed

_DEFAULT_PORTS = {"http": "80", "https": "443"}


class AddressNotAllowed(ActionNotAllowed):
    """A connection's address is not one the operator allows; nothing was sent there."""


class _Address(NamedTuple):
    scheme: str
    host: str
    port: str
    path: str


def _parse(url: str, *, pattern: bool = False) -> _Address | None:
    text = url.strip()
    if not text or any(c in text for c in "?#@\\") or not text.isprintable() or " " in text:
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host_port = parts.netloc.lower()
    if host_port.startswith("["):
        host, _, rest = host_port.partition("]")
        host += "]"
        port = rest.removeprefix(":")
    else:
        host, _, port = host_port.partition(":")
    if port == "*":
        if not pattern:
            return None
    elif port:
        if not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
            return None
        port = str(int(port))
    else:
        port = _DEFAULT_PORTS[scheme]
    return _Address(scheme, host, port, parts.path.rstrip("/"))


def default_address() -> str:
    """The address new connections get: the operator's Jules API."""
    return settings.JULES_API_BASE_URL.strip().rstrip("/")


def allowed_addresses() -> list[str]:
    return [default_address(), *(u.strip().rstrip("/") for u in settings.JULES_ALLOWED_BASE_URLS)]


def is_allowed(url: str) -> bool:
    address = _parse(url)
    if address is None:
        return False
    for entry in allowed_addresses():
        allowed = _parse(entry, pattern=True)
        if allowed is None:
            continue
        if allowed._replace(port=address.port) == address and allowed.port in {"*", address.port}:
            return True
    return False


def require_allowed(url: str) -> None:
    if not is_allowed(url):
        raise AddressNotAllowed(
            f"{url} is not a Jules address this portal may use. Its operator sets them "
            "(JULES_API_BASE_URL and JULES_ALLOWED_BASE_URLS); nothing was sent there."
        )


def unusable_reason(url: str) -> str:
    """Why a stored connection is not requested any more (the sync and the outbox)."""
    return (
        f"This connection's address ({url}) is no longer one the portal's operator allows "
        "(JULES_API_BASE_URL and JULES_ALLOWED_BASE_URLS), so nothing is sent there: syncing "
        "and actions stay stopped until the operator allows it or changes the address."
    )
