"""A portal session that came from the provider ends with the provider's tokens."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from sessions_app.connections import crypto
from sessions_app.identity import session as state

ISSUER = "https://idp.example.com"


@pytest.fixture
def provider_settings(settings):
    settings.OIDC_ISSUER, settings.OIDC_CLIENT_ID = ISSUER, "portal"
    return settings


def _signed_in_with_provider(client, user, *, expires_in: float, refresh: str = "") -> None:
    client.force_login(user)
    session = client.session
    session[state.SIGNED_IN] = {
        "issuer": ISSUER,
        "sub": "s-1",
        "expires_at": time.time() + expires_in,
        "refresh": crypto.encrypt(refresh) if refresh else "",
        "id_token": crypto.encrypt("header.payload.signature"),
    }
    session.save()


def test_it_lets_a_live_provider_session_through(client, cast, provider_settings):
    _signed_in_with_provider(client, cast.member, expires_in=300)
    assert client.get(reverse("sessions_app:team-list")).status_code == 200


def test_it_signs_out_when_the_tokens_expired_and_cannot_be_renewed(
    client, cast, provider_settings
):
    _signed_in_with_provider(client, cast.member, expires_in=-1)
    response = client.get(reverse("sessions_app:team-list"))
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=%2Fteams%2F"
    assert "_auth_user_id" not in client.session
    # htmx polls get a client redirect, not a sign-in page swapped into a fragment.
    _signed_in_with_provider(client, cast.member, expires_in=-1)
    polled = client.get(reverse("sessions_app:team-list"), HTTP_HX_REQUEST="true")
    assert polled.status_code == 200 and polled["HX-Redirect"].startswith("/accounts/login/")


def test_password_sessions_are_not_the_providers(client, cast, provider_settings):
    client.force_login(cast.member)
    assert client.get(reverse("sessions_app:team-list")).status_code == 200


def test_the_tokens_are_kept_encrypted_in_the_session(db):
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    token = {"refresh_token": "refresh-secret-1", "id_token": "idt-secret-2", "expires_in": 60}
    state.remember_sign_in(session, issuer=ISSUER, token=token, claims={"sub": "s-1"})
    session.save()
    stored = str(SessionStore(session_key=session.session_key).load())
    assert "refresh-secret-1" not in stored and "idt-secret-2" not in stored
    info = state.signed_in(SessionStore(session_key=session.session_key))
    assert info is not None and state.unseal(info["refresh"]) == "refresh-secret-1"
    assert 55 < info["expires_at"] - time.time() <= 60
