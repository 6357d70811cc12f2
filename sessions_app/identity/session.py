"""What a browser session keeps of the provider: the sign-ins under way (state, nonce,
PKCE verifier) and, once signed in, when the provider's tokens expire, with the refresh
and ID tokens encrypted (sessions_app/connections/crypto.py), so a leaked session table
holds no usable token."""

from __future__ import annotations

import time
from typing import Any

from django.contrib.sessions.backends.base import SessionBase

from sessions_app.connections import crypto
from sessions_app.connections.crypto import DecryptionError

PENDING = "oidc_pending"
SIGNED_IN = "oidc"
# A sign-in not finished within this many seconds is forgotten; at most a few at once
# (several tabs), the oldest dropped first.
PENDING_SECONDS = 600
PENDING_MAX = 5


def remember_pending(
    session: SessionBase, state: str, nonce: str, verifier: str, next_url: str
) -> None:
    now = time.time()
    pending = {s: v for s, v in session.get(PENDING, {}).items() if v["at"] > now - PENDING_SECONDS}
    pending[state] = {"nonce": nonce, "verifier": verifier, "next": next_url, "at": now}
    session[PENDING] = dict(sorted(pending.items(), key=lambda kv: kv[1]["at"])[-PENDING_MAX:])


def take_pending(session: SessionBase, state: str) -> dict[str, Any] | None:
    """The sign-in that `state` started, once: a second answer with it finds nothing."""
    pending = dict(session.get(PENDING, {}))
    found = pending.pop(state, None) if state else None
    session[PENDING] = pending
    if found is None or found["at"] <= time.time() - PENDING_SECONDS:
        return None
    return dict(found)


def expiry_of(token: dict[str, Any], claims: dict[str, Any]) -> float:
    """When the provider's sign-in ends: the access token's lifetime, else the ID token's."""
    if token.get("expires_at"):
        return float(token["expires_at"])
    if token.get("expires_in"):
        return time.time() + float(token["expires_in"])
    return float(claims["exp"])


def remember_sign_in(
    session: SessionBase, *, issuer: str, token: dict[str, Any], claims: dict[str, Any]
) -> None:
    refresh = token.get("refresh_token") or ""
    session[SIGNED_IN] = {
        "issuer": issuer,
        "sub": claims.get("sub"),
        "expires_at": expiry_of(token, claims),
        "refresh": crypto.encrypt(refresh) if refresh else "",
        "id_token": crypto.encrypt(token["id_token"]),
    }


def signed_in(session: SessionBase) -> dict[str, Any] | None:
    value = session.get(SIGNED_IN)
    return value if isinstance(value, dict) else None


def unseal(value: str) -> str:
    if not value:
        return ""
    try:
        return crypto.decrypt(value)
    except DecryptionError:
        return ""
