"""Sessions end when the provider says so: once the provider's tokens expire, the portal
asks for fresh ones with the refresh token, and signs the person out when it cannot."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import logout
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from sessions_app.identity import provider as oidc
from sessions_app.identity import session as state
from sessions_app.identity.config import AddressNotAllowed, provider_settings

log = logging.getLogger(__name__)

# How long another request of the session may pass while one renews the tokens.
RENEWAL_SECONDS = 30


def _renew(request: HttpRequest, info: dict[str, object]) -> bool:
    provider = provider_settings()
    if provider is None or info.get("issuer") != provider.issuer:
        return False
    refresh_token = state.unseal(str(info.get("refresh") or ""))
    if not refresh_token:
        return False
    try:
        token = oidc.refresh(provider, refresh_token)
        if "refresh_token" not in token:
            token["refresh_token"] = refresh_token
        if token.get("id_token"):
            claims = oidc.verify_id_token(provider, token["id_token"], nonce=None)
            # A refreshed ID token must name the same person (OpenID Connect Core 12.2).
            if claims.get("sub") != info.get("sub"):
                return False
        else:
            token["id_token"] = state.unseal(str(info.get("id_token") or ""))
            claims = {"sub": info.get("sub"), "exp": time.time() + 60}
    except (oidc.SignInRefused, AddressNotAllowed) as exc:
        log.info("provider session not renewed: %s", getattr(exc, "reason", type(exc).__name__))
        return False
    state.remember_sign_in(request.session, issuer=provider.issuer, token=token, claims=claims)
    return True


class ProviderSessionMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and self._ended(request):
            logout(request)
            messages.info(
                request, "Your sign-in with the identity provider has ended; sign in again."
            )
            url = reverse("login") + "?" + urlencode({"next": request.get_full_path()})
            if request.headers.get("HX-Request"):
                return HttpResponseClientRedirect(url)
            return redirect(url)
        return self.get_response(request)

    @staticmethod
    def _ended(request: HttpRequest) -> bool:
        info = state.signed_in(request.session)
        if info is None:
            return False
        provider = provider_settings()
        if provider is None or info.get("issuer") != provider.issuer:
            # The operator changed or removed the provider this session came from.
            return True
        expires_at = float(info.get("expires_at") or 0)
        if time.time() < expires_at:
            return False
        # One renewal per session at a time: the pages poll in parallel, and a provider
        # that rotates refresh tokens accepts each one only once.
        key = f"oidc:renewing:{request.session.session_key}"
        # (A cache that cannot be reached answers neither; then this request renews.)
        if not cache.add(key, 1, RENEWAL_SECONDS) and cache.get(key) is not None:
            return time.time() > expires_at + RENEWAL_SECONDS
        try:
            return not _renew(request, info)
        finally:
            cache.delete(key)
