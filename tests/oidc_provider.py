"""A small but real OpenID Connect provider on loopback, for the sign-in tests.

Flask serves discovery, an authorization page with a sign-in form, the token endpoint
(authorization code with PKCE S256 checked by Authlib's own helper, single-use codes,
client authentication, refresh), its JWKS and RP-initiated logout. It signs ID tokens
with its own RSA key (joserfc). Knobs make it misbehave the ways a provider or an
attacker could: another audience, an expired token, another signing key, another issuer,
a nonce of an earlier sign-in.
"""

from __future__ import annotations

import base64
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
from flask import Flask, abort, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from markupsafe import escape
from werkzeug.serving import make_server

CLIENT_ID = "jules-portal"
CLIENT_SECRET = "provider-test-secret"


@dataclass
class Person:
    sub: str
    email: str
    groups: list[str] = field(default_factory=list)
    given_name: str = ""
    family_name: str = ""


@dataclass
class LoopbackProvider:
    redirect_uris: list[str] = field(default_factory=list)
    people: dict[str, Person] = field(default_factory=dict)
    # Knobs for the refusal tests.
    audience: str = CLIENT_ID
    id_token_seconds: int = 300
    access_token_seconds: int = 3600
    issuer_claim: str = ""
    sign_with_stranger: bool = False
    nonce_override: str | None = None
    refresh_allowed: bool = True
    # What happened, for the assertions.
    logouts: list[dict[str, str]] = field(default_factory=list)
    token_requests: int = 0
    refreshes: int = 0
    nonces: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "provider-1", "use": "sig"})
        self.stranger = RSAKey.generate_key(2048, parameters={"kid": "provider-1", "use": "sig"})
        self.codes: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, str] = {}
        self.lock = threading.Lock()
        self.server: Any = None
        self.app = self._app()

    # --- running -----------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_port}"

    def start(self) -> LoopbackProvider:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def add_person(self, username: str, **kwargs: Any) -> Person:
        kwargs.setdefault("sub", "sub-" + secrets.token_hex(6))
        kwargs.setdefault("email", f"{username}@example.com")
        person = Person(**kwargs)
        self.people[username] = person
        return person

    # --- tokens ------------------------------------------------------------------------

    def id_token(self, person: Person, nonce: str | None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer_claim or self.issuer,
            "sub": person.sub,
            "aud": self.audience,
            "iat": now if self.id_token_seconds > 0 else now - 3600,
            "exp": now + self.id_token_seconds,
            "email": person.email,
            "email_verified": True,
            "preferred_username": person.email.partition("@")[0],
            "given_name": person.given_name,
            "family_name": person.family_name,
            "groups": list(person.groups),
        }
        if self.nonce_override is not None:
            claims["nonce"] = self.nonce_override
        elif nonce is not None:
            claims["nonce"] = nonce
        key = self.stranger if self.sign_with_stranger else self.key
        return jwt.encode({"alg": "RS256", "kid": "provider-1"}, claims, key)

    def _tokens(self, username: str, nonce: str | None) -> dict[str, Any]:
        person = self.people[username]
        refresh = secrets.token_urlsafe(24)
        with self.lock:
            self.refresh_tokens[refresh] = username
        return {
            "access_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
            "expires_in": self.access_token_seconds,
            "refresh_token": refresh,
            "id_token": self.id_token(person, nonce),
        }

    # --- the web app -------------------------------------------------------------------

    def _app(self) -> Flask:
        app = Flask("test_oidc_provider")
        provider = self

        @app.get("/.well-known/openid-configuration")
        def discovery() -> Any:
            issuer = provider.issuer
            return jsonify(
                {
                    "issuer": issuer,
                    "authorization_endpoint": f"{issuer}/authorize",
                    "token_endpoint": f"{issuer}/token",
                    "jwks_uri": f"{issuer}/jwks",
                    "end_session_endpoint": f"{issuer}/logout",
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "code_challenge_methods_supported": ["S256"],
                    "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                }
            )

        @app.get("/favicon.ico")
        def favicon() -> Any:
            return "", 204

        @app.get("/jwks")
        def jwks() -> Any:
            return jsonify(KeySet([provider.key]).as_dict(private=False))

        def _check_authorize(args: Any) -> None:
            if args.get("client_id") != CLIENT_ID or args.get("response_type") != "code":
                abort(400, "unknown client or response type")
            if args.get("redirect_uri") not in provider.redirect_uris:
                abort(400, "redirect_uri not registered")
            if args.get("code_challenge_method") != "S256" or not args.get("code_challenge"):
                abort(400, "PKCE S256 required")
            if "openid" not in args.get("scope", "").split():
                abort(400, "openid scope required")

        @app.get("/authorize")
        def authorize_page() -> Any:
            _check_authorize(request.args)
            hidden = "".join(
                f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
                for k, v in request.args.items()
            )
            return (
                "<!doctype html><html><head><title>Test provider</title></head><body>"
                "<h1>Test identity provider</h1>"
                '<form method="post" action="/authorize">'
                f"{hidden}"
                '<label for="username">Username</label>'
                '<input id="username" name="username">'
                '<button type="submit" id="provider-sign-in">Sign in</button>'
                "</form></body></html>"
            )

        @app.post("/authorize")
        def authorize() -> Any:
            _check_authorize(request.form)
            username = request.form.get("username", "")
            target = request.form["redirect_uri"]
            if username not in provider.people:
                query = {"error": "access_denied", "error_description": "Unknown person"}
            else:
                code = secrets.token_urlsafe(24)
                with provider.lock:
                    provider.codes[code] = {
                        "username": username,
                        "redirect_uri": target,
                        "challenge": request.form["code_challenge"],
                        "nonce": request.form.get("nonce"),
                    }
                    provider.nonces.append(request.form.get("nonce", ""))
                query = {"code": code}
            query["state"] = request.form.get("state", "")
            return redirect(f"{target}?{urlencode(query)}")

        def _client_ok() -> bool:
            header = request.headers.get("Authorization", "")
            if not header.startswith("Basic "):
                return False
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            return user == CLIENT_ID and password == CLIENT_SECRET

        @app.post("/token")
        def token() -> Any:
            with provider.lock:
                provider.token_requests += 1
            if not _client_ok():
                return jsonify({"error": "invalid_client"}), 401
            grant = request.form.get("grant_type")
            if grant == "refresh_token":
                with provider.lock:
                    provider.refreshes += 1
                    username = provider.refresh_tokens.pop(
                        request.form.get("refresh_token", ""), None
                    )
                if username is None or not provider.refresh_allowed:
                    return jsonify({"error": "invalid_grant"}), 400
                return jsonify(provider._tokens(username, None))
            if grant != "authorization_code":
                return jsonify({"error": "unsupported_grant_type"}), 400
            with provider.lock:
                issued = provider.codes.pop(request.form.get("code", ""), None)
            if issued is None or issued["redirect_uri"] != request.form.get("redirect_uri"):
                return jsonify({"error": "invalid_grant"}), 400
            verifier = request.form.get("code_verifier", "")
            if create_s256_code_challenge(verifier) != issued["challenge"]:
                return jsonify({"error": "invalid_grant", "error_description": "PKCE"}), 400
            return jsonify(provider._tokens(issued["username"], issued["nonce"]))

        @app.get("/logout")
        def logout() -> Any:
            provider.logouts.append(dict(request.args))
            target = request.args.get("post_logout_redirect_uri", "")
            if target and any(
                target.startswith(u.rsplit("/accounts/", 1)[0]) for u in provider.redirect_uris
            ):
                return redirect(target)
            return (
                "<!doctype html><html><body><p>Signed out of the test provider.</p></body></html>"
            )

        return app


def sign_in_through(
    client: Any, provider: LoopbackProvider, username: str, next_url: str = ""
) -> Any:
    """What a browser does: start at the portal, sign in on the provider's page, come back.

    Returns the portal's answer to the callback (`client` is Django's test client).
    """
    start = client.get("/accounts/oidc/login/" + (f"?next={next_url}" if next_url else ""))
    assert start.status_code == 302, start.content
    authorize = start["Location"]
    assert authorize.startswith(provider.issuer + "/authorize?")
    page = requests.get(authorize, timeout=10)
    assert page.status_code == 200, page.text
    form = dict(parse_qsl(urlsplit(authorize).query))
    answer = requests.post(
        provider.issuer + "/authorize",
        data={**form, "username": username},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text
    return client.get(callback_path(answer.headers["Location"]))


def callback_path(location: str) -> str:
    parts = urlsplit(location)
    return f"{parts.path}?{parts.query}"
