"""The provider's settings, and where the portal may connect for it.

The portal calls the provider itself only for discovery, tokens and keys. Those addresses
follow the rules of Jules addresses (docs/reliability.md#jules-address): HTTPS on the
issuer's own host, or an address the operator lists in OIDC_ALLOWED_URLS (scheme, host
and port; the port may be `*`), never one that a discovery document merely names.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from sessions_app.access import ActionNotAllowed


class AddressNotAllowed(ActionNotAllowed):
    """An address of the provider that the operator does not allow; nothing was sent."""


@dataclass(frozen=True)
class ProviderSettings:
    issuer: str
    client_id: str
    client_secret: str
    name: str
    scopes: str
    groups_claim: str
    group_roles: str
    timeout: float


def provider_settings() -> ProviderSettings | None:
    """The configured provider, or None when OpenID Connect sign-in is off."""
    if not (settings.OIDC_ISSUER and settings.OIDC_CLIENT_ID):
        return None
    scopes = settings.OIDC_SCOPES.split()
    if "openid" not in scopes:
        scopes.insert(0, "openid")
    return ProviderSettings(
        issuer=settings.OIDC_ISSUER.strip().rstrip("/"),
        client_id=settings.OIDC_CLIENT_ID,
        client_secret=settings.OIDC_CLIENT_SECRET,
        name=settings.OIDC_PROVIDER_NAME,
        scopes=" ".join(scopes),
        groups_claim=settings.OIDC_GROUPS_CLAIM,
        group_roles=settings.OIDC_GROUP_ROLES,
        timeout=settings.OIDC_TIMEOUT_SECONDS,
    )


def password_sign_in() -> bool:
    """Local passwords stay on unless the operator turned them off for the provider."""
    return bool(settings.PASSWORD_SIGN_IN) or provider_settings() is None


_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _origin(url: str, *, pattern: bool = False) -> tuple[str, str, str] | None:
    text = url.strip()
    if not text or any(c in text for c in "@\\ ") or not text.isprintable():
        return None
    try:
        parts = urlsplit(text)
        port = parts.netloc.rpartition(":")[2] if pattern and parts.netloc.endswith(":*") else None
        if port is None:
            port = str(parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), ""))
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port


def is_allowed(url: str, issuer: str) -> bool:
    origin = _origin(url)
    if origin is None or "#" in url:
        return False
    home = _origin(issuer)
    if origin[0] == "https" and home is not None and origin == home:
        return True
    for entry in settings.OIDC_ALLOWED_URLS:
        allowed = _origin(entry, pattern=True)
        if allowed and allowed[:2] == origin[:2] and allowed[2] in {"*", origin[2]}:
            return True
    return False


def require_allowed(url: str, issuer: str, what: str) -> None:
    if not is_allowed(url, issuer):
        raise AddressNotAllowed(
            f"The identity provider's {what} ({url or 'none'}) is not an address this portal "
            "may use: it must be HTTPS on the issuer's host or listed by the operator in "
            "OIDC_ALLOWED_URLS. Nothing was sent there."
        )
