"""Signing in through the identity provider's own page in Chromium, and out again at the
provider (tests/oidc_provider.py runs the provider on loopback)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from sessions_app.models import AuditEntry, Membership, ProviderIdentity
from tests.factories import TeamFactory
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, LoopbackProvider

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def idp(settings: Any, live_server: Any) -> Iterator[LoopbackProvider]:
    provider = LoopbackProvider(redirect_uris=[f"{live_server.url}/accounts/oidc/callback/"])
    provider.start()
    settings.OIDC_ISSUER = provider.issuer
    settings.OIDC_CLIENT_ID = CLIENT_ID
    settings.OIDC_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_PROVIDER_NAME = "Test IdP"
    settings.OIDC_ALLOWED_URLS = ["http://127.0.0.1:*"]
    settings.OIDC_GROUP_ROLES = "acme-devs=acme:member"
    settings.PASSWORD_SIGN_IN = False
    yield provider
    provider.stop()


def test_a_person_signs_in_through_the_provider_page_and_out_again(
    page, live_server, idp, screenshot
):
    TeamFactory(name="Acme", slug="acme")
    person = idp.add_person("grace", groups=["acme-devs"])
    page.goto(f"{live_server.url}/teams/")
    page.wait_for_url(re.compile(r".*/accounts/login/\?next=.*"))
    assert page.locator("#id_password").count() == 0
    screenshot("oidc-sign-in")
    page.click("#oidc-sign-in")

    page.wait_for_url(re.compile(re.escape(idp.issuer) + r"/authorize\?.*"))
    page.fill("#username", "grace")
    page.click("#provider-sign-in")

    page.wait_for_url(re.compile(r".*/teams/$"))
    page.wait_for_selector(".toast >> text=You joined Acme as Member.")
    assert page.locator("main >> text=Acme").count() >= 1
    user = ProviderIdentity.objects.get(subject=person.sub).user
    assert Membership.objects.get(user=user).role == "member"
    assert AuditEntry.objects.get(action="auth.sign_in", actor=user).details["method"] == "oidc"

    page.click("button:has-text('Sign out')")
    # Out of the portal, then the provider ends its own session and sends the browser back.
    page.wait_for_url(re.compile(r".*/accounts/login/$"))
    assert len(idp.logouts) == 1 and idp.logouts[0]["id_token_hint"]
    page.goto(f"{live_server.url}/teams/")
    page.wait_for_url(re.compile(r".*/accounts/login/\?next=.*"))


def test_a_refused_sign_in_shows_a_clear_page(page, live_server, idp, browser_problems, screenshot):
    idp.add_person("mallory")
    idp.sign_with_stranger = True
    # The refusal page answers 403, which the browser also reports on its console.
    browser_problems.allow(r"HTTP 403: GET .*/accounts/oidc/callback/")
    browser_problems.allow(r"status of 403 .*/accounts/oidc/callback/")
    page.goto(f"{live_server.url}/accounts/login/")
    page.click("#oidc-sign-in")
    page.fill("#username", "mallory")
    page.click("#provider-sign-in")
    page.wait_for_selector("text=You are not signed in")
    assert "signature does not match" in page.inner_text("[role=alert]")
    screenshot("oidc-refused")
    page.click("text=Back to sign in")
    page.wait_for_url(re.compile(r".*/accounts/login/$"))
    assert not ProviderIdentity.objects.exists()
