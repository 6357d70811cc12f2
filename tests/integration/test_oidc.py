"""OpenID Connect sign-in end to end against a real provider on loopback
(tests/oidc_provider.py), on PostgreSQL with Redis as the cache: the whole flow, the group
mapping, token expiry, sign-out, the operator's command, and each refusal with its page."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.test import Client

from sessions_app.models import AuditEntry, Membership, ProviderIdentity
from tests.factories import DEFAULT_PASSWORD, MembershipFactory, TeamFactory, UserFactory
from tests.oidc_provider import (
    CLIENT_ID,
    CLIENT_SECRET,
    LoopbackProvider,
    callback_path,
    sign_in_through,
)

pytestmark = pytest.mark.django_db(transaction=True)

CALLBACK = "http://testserver/accounts/oidc/callback/"


@pytest.fixture
def idp(settings: Any) -> Iterator[LoopbackProvider]:
    provider = LoopbackProvider(redirect_uris=[CALLBACK]).start()
    settings.OIDC_ISSUER = provider.issuer
    settings.OIDC_CLIENT_ID = CLIENT_ID
    settings.OIDC_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_PROVIDER_NAME = "Test IdP"
    settings.OIDC_ALLOWED_URLS = ["http://127.0.0.1:*"]
    settings.OIDC_GROUP_ROLES = "acme-admins=acme:admin,acme-devs=acme:member,all=globex:viewer"
    yield provider
    provider.stop()


@pytest.fixture
def teams(db: Any) -> tuple[Any, Any]:
    return TeamFactory(name="Acme", slug="acme"), TeamFactory(name="Globex", slug="globex")


def _refusal(response: Any, reason: str) -> str:
    text = response.content.decode()
    assert f'data-reason="{reason}"' in text, text
    assert "_auth_user_id" not in response.wsgi_request.session
    assert AuditEntry.objects.filter(action="auth.sign_in_failed", details__reason=reason).exists()
    return text


def test_it_signs_in_creates_the_person_and_applies_the_groups(idp, teams):
    acme, globex = teams
    person = idp.add_person("ada", groups=["acme-devs", "all"], given_name="Ada")
    client = Client()
    page = client.get("/accounts/login/")
    assert "Sign in with Test IdP" in page.content.decode()

    response = sign_in_through(client, idp, "ada", next_url="/teams/")
    assert response.status_code == 302 and response["Location"] == "/teams/"
    link = ProviderIdentity.objects.get(issuer=idp.issuer, subject=person.sub)
    user = link.user
    assert (user.email, user.first_name, user.has_usable_password()) == (
        "ada@example.com",
        "Ada",
        False,
    )
    roles = {m.team.slug: (m.role, m.origin) for m in Membership.objects.filter(user=user)}
    assert roles == {"acme": ("member", "provider"), "globex": ("viewer", "provider")}
    assert client.get("/teams/").status_code == 200
    sign_in = AuditEntry.objects.get(action="auth.sign_in", actor=user)
    assert sign_in.details == {"method": "oidc", "issuer": idp.issuer, "subject": person.sub}
    added = AuditEntry.objects.filter(action="member.add", target_id=str(user.pk))
    assert {(e.team_id, e.actor_label, e.details["origin"]) for e in added} == {
        (acme.pk, "identity provider", "provider"),
        (globex.pk, "identity provider", "provider"),
    }

    # The provider changes the address and the groups: the same account (found by sub,
    # not by email), promoted in one team and out of the other.
    person.email, person.groups = "ada.l@example.com", ["acme-admins"]
    sign_in_through(Client(), idp, "ada")
    assert ProviderIdentity.objects.count() == 1
    user.refresh_from_db()
    assert user.email == "ada.l@example.com"
    assert {m.team.slug: m.role for m in Membership.objects.filter(user=user)} == {"acme": "admin"}
    assert AuditEntry.objects.filter(
        action="member.role_change", details__to="admin", details__origin="provider"
    ).exists()
    assert AuditEntry.objects.filter(action="member.remove", team=globex).exists()


def test_it_keeps_manual_memberships_when_the_groups_change(idp, teams):
    _, globex = teams
    idp.add_person("bob", sub="bob-sub", groups=["acme-devs"])
    sign_in_through(Client(), idp, "bob")
    user = ProviderIdentity.objects.get(subject="bob-sub").user
    # An invitation (or the operator) made bob an approver of Globex: not the provider's.
    MembershipFactory(team=globex, user=user, role="approver")
    idp.people["bob"].groups = []
    sign_in_through(Client(), idp, "bob")
    assert {m.team.slug: m.role for m in Membership.objects.filter(user=user)} == {
        "globex": "approver"
    }


def test_it_refuses_a_token_for_another_audience(idp, teams):
    idp.add_person("eve")
    idp.audience = "another-app"
    response = sign_in_through(Client(), idp, "eve")
    assert response.status_code == 403
    assert "issued for another application" in _refusal(response, "wrong_audience")
    assert not ProviderIdentity.objects.exists()


def test_it_refuses_an_expired_token(idp, teams):
    idp.add_person("eve")
    idp.id_token_seconds = -600
    response = sign_in_through(Client(), idp, "eve")
    assert response.status_code == 403
    assert "has expired" in _refusal(response, "expired_token")


def test_it_refuses_a_token_signed_with_another_key(idp, teams):
    idp.add_person("eve")
    idp.sign_with_stranger = True
    response = sign_in_through(Client(), idp, "eve")
    assert response.status_code == 403
    assert "signature does not match" in _refusal(response, "bad_signature")


def test_it_refuses_a_token_of_an_unknown_issuer(idp, teams):
    idp.add_person("eve")
    idp.issuer_claim = "https://issuer.invalid"
    response = sign_in_through(Client(), idp, "eve")
    assert response.status_code == 403
    assert "issuer this portal does not know" in _refusal(response, "unknown_issuer")


def test_it_refuses_a_reused_state(idp, teams):
    import requests

    idp.add_person("ada")
    client = Client()
    start = client.get("/accounts/oidc/login/")
    from urllib.parse import parse_qsl, urlsplit

    form = dict(parse_qsl(urlsplit(start["Location"]).query))
    answer = requests.post(
        idp.issuer + "/authorize",
        data={**form, "username": "ada"},
        allow_redirects=False,
        timeout=10,
    )
    callback = callback_path(answer.headers["Location"])
    assert client.get(callback).status_code == 302
    client.logout()
    replay = client.get(callback)
    assert replay.status_code == 400
    assert "used already" in _refusal(replay, "unknown_state")
    # The provider was asked for tokens once: the replay stopped before the token endpoint.
    assert idp.token_requests == 1


def test_it_refuses_a_reused_nonce(idp, teams):
    idp.add_person("ada")
    sign_in_through(Client(), idp, "ada")
    # A token minted for the first sign-in comes back in a second one.
    idp.nonce_override = idp.nonces[0]
    response = sign_in_through(Client(), idp, "ada")
    assert response.status_code == 403
    assert "nonce does not match" in _refusal(response, "nonce_mismatch")


def test_it_connects_only_where_the_operator_allows(idp, teams, settings):
    settings.OIDC_ALLOWED_URLS = []
    idp.add_person("ada")
    response = Client().get("/accounts/oidc/login/")
    assert response.status_code == 502
    assert "OIDC_ALLOWED_URLS" in _refusal(response, "address_not_allowed")
    assert idp.token_requests == 0


def test_it_refreshes_then_ends_the_session_when_the_provider_tokens_expire(idp, teams):
    idp.add_person("ada", groups=["acme-devs"])
    idp.access_token_seconds = 1
    client = Client()
    sign_in_through(client, idp, "ada")
    time.sleep(1.2)
    assert client.get("/teams/").status_code == 200
    assert idp.refreshes == 1
    idp.refresh_allowed = False
    time.sleep(1.2)
    response = client.get("/teams/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.get("/teams/").status_code == 302


def test_it_signs_out_at_the_provider_too(idp, teams):
    idp.add_person("ada")
    client = Client()
    sign_in_through(client, idp, "ada")
    response = client.post("/accounts/logout/")
    assert response.status_code == 200
    text = response.content.decode()
    assert f"{idp.issuer}/logout?" in text and "id_token_hint=" in text
    assert "_auth_user_id" not in client.session
    assert client.get("/teams/").status_code == 302


def test_the_operator_signs_everyone_out(idp, teams):
    idp.add_person("ada")
    first, second = Client(), Client()
    sign_in_through(first, idp, "ada")
    second.force_login(UserFactory(username="local"))
    assert Session.objects.count() == 2
    call_command("sign_everyone_out")
    assert Session.objects.count() == 0
    assert first.get("/teams/").status_code == 302
    assert second.get("/teams/").status_code == 302
    assert AuditEntry.objects.get(action="auth.sign_out_all").details == {"sessions": 2}


def test_passwords_can_be_turned_off(idp, teams, settings):
    settings.PASSWORD_SIGN_IN = False
    UserFactory(username="local", is_staff=True, is_superuser=True)
    client = Client()
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with Test IdP" in page and 'id="id_password"' not in page
    refused = client.post("/accounts/login/", {"username": "local", "password": DEFAULT_PASSWORD})
    assert refused.status_code == 403 and "Passwords are turned off" in refused.content.decode()
    # The admin's own sign-in form goes through the same backend, and is refused too.
    admin = client.post(
        "/admin/login/?next=/admin/", {"username": "local", "password": DEFAULT_PASSWORD}
    )
    assert admin.status_code == 200 and "_auth_user_id" not in client.session


def test_a_session_ends_when_the_operator_changes_the_provider(idp, teams, settings):
    idp.add_person("ada")
    client = Client()
    sign_in_through(client, idp, "ada")
    assert client.get("/teams/").status_code == 200
    settings.OIDC_ISSUER = "https://another-idp.example.com"
    response = client.get("/teams/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    # Local sessions are not the provider's: they carry on.
    local = Client()
    local.force_login(UserFactory(username="local"))
    assert local.get("/teams/").status_code == 200


def test_an_emailed_invitation_is_sent_by_a_worker_and_accepted_after_a_provider_sign_in(
    idp, teams, workers
):
    import re

    from django.urls import reverse

    from sessions_app.models import Invitation
    from tests.integration.conftest import wait_for
    from tests.receivers import SmtpSink

    acme, _ = teams
    admin = UserFactory(username="boss")
    MembershipFactory(team=acme, user=admin, role="admin")
    smtp = SmtpSink().start()
    try:
        workers.extra_env = {
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp.port),
            "SITE_URL": "https://portal.example.com",
        }
        workers.start("w1", queues="actions", concurrency=1)
        boss = Client()
        boss.force_login(admin)
        url = reverse("sessions_app:invitation-create", args=["acme"])
        assert boss.post(url, {"email": "grace@example.com", "role": "approver"}).status_code == 302
        wait_for(lambda: smtp.messages, timeout=30)
    finally:
        smtp.stop()
    message = smtp.messages[0]
    assert smtp.envelopes[0] == ["grace@example.com"]
    body = message.get_content()
    link = re.search(r"https://portal\.example\.com(/invitations/join/[^/\s]+/)", body)
    assert link is not None, body
    invitation = Invitation.objects.get(email="grace@example.com")
    assert invitation.emailed_at is not None and invitation.token_sealed == ""

    # Grace signs in with the provider (no group gives her anything) and accepts.
    idp.add_person("grace", email="grace@example.com")
    grace = Client()
    sign_in_through(grace, idp, "grace", next_url=link.group(1))
    assert not Membership.objects.filter(team=acme, user__email="grace@example.com").exists()
    joined = grace.post(link.group(1), {"answer": "accept"})
    assert joined.status_code == 302
    membership = Membership.objects.get(team=acme, user__email="grace@example.com")
    assert (membership.role, membership.origin) == ("approver", "manual")
    assert grace.get(link.group(1)).status_code == 410
