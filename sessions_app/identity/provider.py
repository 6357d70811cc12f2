"""The portal's side of OpenID Connect: discovery, the authorization request (code flow
with PKCE, state and nonce), the token exchange and refresh, and ID token verification.

Authlib makes the OAuth 2.0 requests, joserfc verifies the ID token: its signature with
the provider's published keys (JWKS), then iss, aud, exp, iat and nonce. Every failure
is a `SignInRefused` whose message is written for the person on the sign-in page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import requests
from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.integrations.base_client.errors import OAuthError  # type: ignore[import-untyped]
from authlib.integrations.requests_client import OAuth2Session  # type: ignore[import-untyped]
from django.core.cache import cache
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet

from sessions_app.identity.config import AddressNotAllowed, ProviderSettings, require_allowed

log = logging.getLogger(__name__)

METADATA_SECONDS = 3600
# Seconds of clock difference allowed between the provider and the portal.
LEEWAY = 60
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"]


class SignInRefused(Exception):
    """The provider's answer cannot sign anyone in; the message says why, for people."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Metadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str


def _get_json(url: str, provider: ProviderSettings, what: str) -> dict[str, Any]:
    require_allowed(url, provider.issuer, what)
    try:
        response = requests.get(url, timeout=provider.timeout, allow_redirects=False)
        response.raise_for_status()
        data = response.json()
    except (requests.RequestException, ValueError) as exc:
        log.warning("identity provider %s unreadable at %s: %s", what, url, type(exc).__name__)
        raise SignInRefused(
            f"The identity provider did not answer properly ({what}); try again in a moment.",
            "provider_unavailable",
        ) from exc
    if not isinstance(data, dict):
        raise SignInRefused(
            f"The identity provider's {what} is not a JSON object.", "provider_malformed"
        )
    return data


def metadata(provider: ProviderSettings, *, fresh: bool = False) -> Metadata:
    """The provider's discovery document, cached for an hour; its endpoints checked."""
    key = f"oidc:metadata:{provider.issuer}"
    data = None if fresh else cache.get(key)
    if data is None:
        url = provider.issuer + "/.well-known/openid-configuration"
        data = _get_json(url, provider, "discovery document")
        if data.get("issuer") != provider.issuer:
            raise SignInRefused(
                "The identity provider names another issuer than the one this portal is set "
                "up for (OIDC_ISSUER); nobody can sign in with it.",
                "unknown_issuer",
            )
        cache.set(key, data, METADATA_SECONDS)
    fields = {}
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = data.get(name)
        if not isinstance(value, str) or not value:
            raise SignInRefused(
                f"The identity provider's discovery document has no {name}.", "provider_malformed"
            )
        fields[name] = value
    for name in ("token_endpoint", "jwks_uri"):
        require_allowed(fields[name], provider.issuer, name.replace("_", " "))
    end_session = data.get("end_session_endpoint")
    return Metadata(
        issuer=provider.issuer,
        end_session_endpoint=end_session if isinstance(end_session, str) else "",
        **fields,
    )


def _client(provider: ProviderSettings, redirect_uri: str = "") -> OAuth2Session:
    return OAuth2Session(
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        scope=provider.scopes,
        redirect_uri=redirect_uri or None,
        code_challenge_method="S256",
        default_timeout=provider.timeout,
    )


@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    state: str
    nonce: str
    code_verifier: str


def authorization_request(provider: ProviderSettings, redirect_uri: str) -> AuthorizationRequest:
    meta = metadata(provider)
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    with _client(provider, redirect_uri) as client:
        url, _ = client.create_authorization_url(
            meta.authorization_endpoint, state=state, code_verifier=verifier, nonce=nonce
        )
    return AuthorizationRequest(url=url, state=state, nonce=nonce, code_verifier=verifier)


def _token_call(provider: ProviderSettings, **kwargs: Any) -> dict[str, Any]:
    meta = metadata(provider)
    with _client(provider, kwargs.pop("redirect_uri", "")) as client:
        try:
            if "refresh_token" in kwargs:
                token = client.refresh_token(meta.token_endpoint, allow_redirects=False, **kwargs)
            else:
                token = client.fetch_token(
                    meta.token_endpoint,
                    grant_type="authorization_code",
                    allow_redirects=False,
                    **kwargs,
                )
        except OAuthError as exc:
            raise SignInRefused(
                "The identity provider refused to hand out the sign-in "
                f"({exc.error or 'no reason given'}); start again.",
                "token_refused",
            ) from exc
        except (requests.RequestException, ValueError) as exc:
            log.warning("identity provider token endpoint failed: %s", type(exc).__name__)
            raise SignInRefused(
                "The identity provider did not answer the sign-in; try again in a moment.",
                "provider_unavailable",
            ) from exc
    return dict(token)


def exchange_code(
    provider: ProviderSettings, *, code: str, code_verifier: str, redirect_uri: str
) -> dict[str, Any]:
    return _token_call(provider, code=code, code_verifier=code_verifier, redirect_uri=redirect_uri)


def refresh(provider: ProviderSettings, refresh_token: str) -> dict[str, Any]:
    return _token_call(provider, refresh_token=refresh_token)


def _key_set(provider: ProviderSettings, meta: Metadata, *, fresh: bool) -> KeySet:
    key = f"oidc:jwks:{meta.jwks_uri}"
    data = None if fresh else cache.get(key)
    if data is None:
        data = _get_json(meta.jwks_uri, provider, "signing keys")
        cache.set(key, data, METADATA_SECONDS)
    try:
        return KeySet.import_key_set(data)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise SignInRefused(
            "The identity provider's signing keys cannot be read.", "provider_malformed"
        ) from exc


def _decode(id_token: str, keys: KeySet) -> jwt.Token:
    return jwt.decode(id_token, keys, algorithms=ALGORITHMS)


def verify_id_token(
    provider: ProviderSettings, id_token: str, *, nonce: str | None
) -> dict[str, Any]:
    """The ID token's claims once its signature, issuer, audience, times and nonce hold.

    `nonce=None` is a refreshed token, which carries no new nonce (OpenID Connect Core 12.2).
    """
    meta = metadata(provider)
    if not isinstance(id_token, str) or not id_token:
        raise SignInRefused("The identity provider sent no ID token.", "no_id_token")
    try:
        try:
            token = _decode(id_token, _key_set(provider, meta, fresh=False))
        except (BadSignatureError, ValueError, JoseError):
            # A key rotated at the provider: read its keys again once, then decide.
            token = _decode(id_token, _key_set(provider, meta, fresh=True))
    except BadSignatureError as exc:
        raise SignInRefused(
            "The ID token's signature does not match the identity provider's keys; "
            "it was not signed by the provider.",
            "bad_signature",
        ) from exc
    except (JoseError, ValueError) as exc:
        raise SignInRefused(
            "The ID token could not be verified with the identity provider's keys.",
            "bad_signature",
        ) from exc
    claims = dict(token.claims)
    if claims.get("iss") != provider.issuer:
        raise SignInRefused(
            f"The ID token comes from an issuer this portal does not know ({claims.get('iss')!s:.100}).",
            "unknown_issuer",
        )
    options: dict[str, Any] = {
        "aud": {"essential": True, "value": provider.client_id},
        "sub": {"essential": True},
        "exp": {"essential": True},
        "iat": {"essential": True},
    }
    if nonce is not None:
        options["nonce"] = {"essential": True, "value": nonce}
    try:
        jwt.JWTClaimsRegistry(leeway=LEEWAY, **options).validate(claims)
    except ExpiredTokenError as exc:
        raise SignInRefused("The ID token has expired; sign in again.", "expired_token") from exc
    except (InvalidClaimError, MissingClaimError) as exc:
        claim = getattr(exc, "claim", "")
        if claim == "aud":
            raise SignInRefused(
                "The ID token was issued for another application (its audience is not this "
                "portal's client id).",
                "wrong_audience",
            ) from exc
        if claim == "nonce":
            raise SignInRefused(
                "The ID token does not belong to this sign-in (its nonce does not match); "
                "start again.",
                "nonce_mismatch",
            ) from exc
        raise SignInRefused(
            f"The ID token's {claim or 'claims'} could not be accepted.", "invalid_claims"
        ) from exc
    aud = claims.get("aud")
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != provider.client_id:
        raise SignInRefused(
            "The ID token was issued for another application (azp).", "wrong_audience"
        )
    return claims


def end_session_url(
    provider: ProviderSettings, *, id_token: str, post_logout_redirect_uri: str
) -> str:
    """Where the browser goes to end the provider's session too (RP-initiated logout)."""
    try:
        meta = metadata(provider)
    except (SignInRefused, AddressNotAllowed):
        return ""
    if not meta.end_session_endpoint:
        return ""
    from urllib.parse import urlencode

    params = {"client_id": provider.client_id, "post_logout_redirect_uri": post_logout_redirect_uri}
    if id_token:
        params["id_token_hint"] = id_token
    separator = "&" if "?" in meta.end_session_endpoint else "?"
    return meta.end_session_endpoint + separator + urlencode(params)
