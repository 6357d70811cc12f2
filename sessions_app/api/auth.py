"""Who is calling: a bearer token (personal or a team's service token) or, for same-origin
browser calls, the session cookie with its CSRF token. Tokens are rate limited."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer, SessionAuth

from sessions_app.api import tokens
from sessions_app.api.errors import ApiError, forbidden
from sessions_app.models import ApiToken

# "Last used" is written at most this often per token, not on every request.
LAST_USED_EVERY = dt.timedelta(minutes=1)


def _rate_limit(token: ApiToken) -> None:
    limit = settings.API_RATE_LIMIT
    if limit <= 0:
        return
    now = time.time()
    window = int(now // 60)
    key = f"api-rate:{token.pk}:{window}"
    # add() then incr(): the counter is created at most once per window.
    cache.add(key, 0, 120)
    try:
        count = cache.incr(key)
    except ValueError:
        count = 1
    if count > limit:
        retry = max(1, int((window + 1) * 60 - now) + 1)
        raise ApiError(
            429,
            "rate_limited",
            f"This token may make {limit} requests a minute; try again in {retry} s.",
            headers={"Retry-After": str(retry)},
        )


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        found = tokens.resolve(token)
        if found is None:
            return None
        _rate_limit(found)
        now = timezone.now()
        if found.last_used_at is None or now - found.last_used_at > LAST_USED_EVERY:
            ApiToken.objects.filter(pk=found.pk).update(last_used_at=now)
        request.api_token = found  # type: ignore[attr-defined]
        return found.user


class BrowserSession(SessionAuth):
    """The signed-in user, for the portal's own pages; CSRF is checked on writes."""

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        # A request that presents a token is judged by the token alone: a revoked one
        # must not pass on the strength of a cookie the same browser happens to hold.
        if "authorization" in request.headers:
            return None
        return super().authenticate(request, key)


def caller(request: HttpRequest) -> Any:
    return request.auth  # type: ignore[attr-defined]


def caller_key(request: HttpRequest) -> str:
    token = getattr(request, "api_token", None)
    return f"token:{token.pk}" if token is not None else f"user:{caller(request).pk}"


def need(request: HttpRequest, scope: str) -> None:
    """Refuse when the token lacks the scope; a browser session has every scope."""
    token: ApiToken | None = getattr(request, "api_token", None)
    if token is not None and scope not in token.scopes:
        raise forbidden(f"This token does not have the {scope!r} scope.")
