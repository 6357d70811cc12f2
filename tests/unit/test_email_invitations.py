"""Invitations by email: the link works once, until it expires, for the invited address;
and the sign-in pages of the provider answer the whole cast."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from sessions_app.access import ActionNotAllowed
from sessions_app.identity import invitations
from sessions_app.models import AuditEntry, Invitation, Membership
from tests.factories import UserFactory


def _invite(cast, email="newcomer@example.com", role="approver", *, capture):
    with capture(execute=True):
        return invitations.invitation_create_by_email(
            actor=cast.admin, team=cast.team, email=email, role=role
        )


def _link(mailoutbox) -> str:
    match = re.search(r"http://\S+/invitations/join/([^/\s]+)/", mailoutbox[-1].body)
    assert match is not None, mailoutbox[-1].body
    return reverse("sessions_app:invitation-join", args=[match.group(1)])


def test_the_email_carries_a_link_and_the_token_is_kept_only_hashed(
    cast, mailoutbox, django_capture_on_commit_callbacks
):
    invitation = _invite(cast, capture=django_capture_on_commit_callbacks)
    assert len(mailoutbox) == 1
    sent = mailoutbox[0]
    assert sent.to == ["newcomer@example.com"] and "Acme" in sent.subject
    assert "as Approver" in sent.body and "works once" in sent.body
    token = _link(mailoutbox).rstrip("/").rsplit("/", 1)[1]
    invitation.refresh_from_db()
    assert invitation.emailed_at is not None and invitation.token_sealed == ""
    assert token not in str(Invitation.objects.filter(pk=invitation.pk).values().get())
    # A second run of the task sends nothing more.
    assert invitations.invitation_send(invitation.pk) is False
    assert len(mailoutbox) == 1
    entry = AuditEntry.objects.get(action="member.invite")
    assert entry.details["email"] == "newcomer@example.com" and token not in str(entry.details)


def test_the_invited_person_accepts_once(
    client, cast, mailoutbox, django_capture_on_commit_callbacks
):
    _invite(cast, capture=django_capture_on_commit_callbacks)
    url = _link(mailoutbox)
    # Signed out: the page says what it offers and asks to sign in first.
    page = client.get(url)
    assert page.status_code == 200 and "Sign in to answer" in page.content.decode()
    newcomer = UserFactory(username="newcomer", email="Newcomer@example.com")
    client.force_login(newcomer)
    page = client.get(url).content.decode()
    assert "Join Acme" in page and "Approver" in page
    joined = client.post(url, {"answer": "accept"})
    assert joined.status_code == 302 and joined["Location"] == "/teams/acme/"
    membership = Membership.objects.get(team=cast.team, user=newcomer)
    assert (membership.role, membership.origin) == ("approver", "manual")
    assert AuditEntry.objects.filter(action="member.accept", actor=newcomer).count() == 1
    # The link worked once: now a clear "used" page, for everyone.
    again = client.get(url)
    assert again.status_code == 410 and "accepted already" in again.content.decode()
    assert client.post(url, {"answer": "accept"}).status_code == 410


def test_an_expired_or_revoked_link_gets_a_clear_page(
    client, cast, mailoutbox, django_capture_on_commit_callbacks
):
    invitation = _invite(cast, capture=django_capture_on_commit_callbacks)
    url = _link(mailoutbox)
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - dt.timedelta(minutes=1)
    )
    client.force_login(UserFactory(username="newcomer"))
    expired = client.post(url, {"answer": "accept"})
    assert expired.status_code == 410 and "has expired" in expired.content.decode()
    assert not Membership.objects.filter(user__username="newcomer").exists()
    Invitation.objects.filter(pk=invitation.pk).update(status="revoked")
    revoked = client.get(url)
    assert revoked.status_code == 410 and "revoked" in revoked.content.decode()
    unknown = client.get(reverse("sessions_app:invitation-join", args=["nope"]))
    assert unknown.status_code == 404 and "not valid" in unknown.content.decode()


def test_someone_else_holding_the_link_cannot_join(
    client, cast, mailoutbox, django_capture_on_commit_callbacks
):
    _invite(cast, capture=django_capture_on_commit_callbacks)
    url = _link(mailoutbox)
    forwarded = UserFactory(username="colleague", email="colleague@example.com")
    client.force_login(forwarded)
    refused = client.post(url, {"answer": "accept"})
    assert refused.status_code == 403
    assert "is for newcomer@example.com" in refused.content.decode()
    assert not Membership.objects.filter(user=forwarded).exists()
    # The invitation is still there for its owner.
    assert Invitation.objects.get(email="newcomer@example.com").status == "pending"


def test_the_invitee_may_decline(client, cast, mailoutbox, django_capture_on_commit_callbacks):
    invitation = _invite(cast, capture=django_capture_on_commit_callbacks)
    url = _link(mailoutbox)
    client.force_login(UserFactory(username="newcomer"))
    assert client.post(url, {"answer": "decline"}).status_code == 302
    invitation.refresh_from_db()
    assert invitation.status == "declined"
    assert not Membership.objects.filter(user__username="newcomer").exists()


def test_only_admins_invite_and_one_pending_invitation_per_address(
    cast, mailoutbox, django_capture_on_commit_callbacks
):
    for role in ("approver", "member", "viewer"):
        with pytest.raises(ActionNotAllowed, match="Only an admin"):
            invitations.invitation_create_by_email(
                actor=cast.by_role()[role], team=cast.team, email="x@example.com", role="viewer"
            )
    _invite(cast, capture=django_capture_on_commit_callbacks)
    with pytest.raises(ActionNotAllowed, match="already has a pending invitation"):
        _invite(cast, "NEWCOMER@example.com", capture=django_capture_on_commit_callbacks)
    # Another team may invite the same address.
    with django_capture_on_commit_callbacks(execute=True):
        invitations.invitation_create_by_email(
            actor=cast.outsider, team=cast.other_team, email="newcomer@example.com", role="viewer"
        )
    assert len(mailoutbox) == 2


@pytest.mark.parametrize("role", ["admin", "approver", "member", "viewer", "outsider"])
def test_the_sign_in_pages_answer_every_role(client, cast, role, settings):
    """The provider's pages are not a team's: signed in or not, nobody reaches a 500, and
    without a provider set up its start and callback are not found."""
    client.force_login(cast.by_role()[role])
    # Signed in already: the sign-in page sends the person on.
    assert client.get(reverse("login")).status_code == 302
    settings.OIDC_ISSUER = ""
    assert client.get(reverse("oidc-login")).status_code == 404
    assert client.get(reverse("oidc-callback")).status_code == 404
    settings.OIDC_ISSUER, settings.OIDC_CLIENT_ID = "https://idp.example.com", "portal"
    # A callback that no sign-in started here is refused with a page, before any request.
    refused = client.get(reverse("oidc-callback") + "?state=forged&code=x")
    assert refused.status_code == 400 and 'data-reason="unknown_state"' in refused.content.decode()
    assert client.post(reverse("logout")).status_code == 302
    assert client.get("/teams/").status_code == 302


def test_an_email_that_fails_waits_for_the_sweep(
    cast, settings, mailoutbox, django_capture_on_commit_callbacks
):
    import socket

    from sessions_app.tasks import sweep_invitations

    # A real SMTP address where nothing listens: the send fails and nothing is lost.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    invitation = _invite(cast, capture=django_capture_on_commit_callbacks)
    invitation.refresh_from_db()
    assert invitation.emailed_at is None and invitation.token_sealed != ""
    page = invitations.invitations_unsent()
    assert page == []  # Not yet: the task's own retries come first.

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    Invitation.objects.filter(pk=invitation.pk).update(
        created_at=timezone.now() - dt.timedelta(minutes=5)
    )
    sweep_invitations()
    assert [m.to for m in mailoutbox] == [["newcomer@example.com"]]
    invitation.refresh_from_db()
    assert invitation.emailed_at is not None and invitation.token_sealed == ""
    sweep_invitations()
    assert len(mailoutbox) == 1


def test_the_checks_name_a_mapping_or_issuer_they_cannot_use(settings):
    from sessions_app.identity.checks import check_oidc_settings

    assert check_oidc_settings(None) == []
    settings.OIDC_GROUP_ROLES = "devs=acme:owner"
    settings.OIDC_ISSUER, settings.OIDC_CLIENT_ID = "http://10.0.0.5:8080", "portal"
    settings.OIDC_ALLOWED_URLS = []
    ids = {message.id for message in check_oidc_settings(None)}
    assert ids == {"sessions_app.E101", "sessions_app.E102"}
    settings.OIDC_ALLOWED_URLS = ["http://10.0.0.5:*"]
    settings.OIDC_GROUP_ROLES = "devs=acme:admin"
    assert check_oidc_settings(None) == []


@pytest.mark.parametrize(
    "url, allowed",
    [
        ("https://idp.example.com/token", True),
        ("https://idp.example.com:8443/token", False),
        ("http://idp.example.com/token", False),
        ("https://keys.example.net/jwks", False),
        ("https://user@idp.example.com/token", False),
        ("http://127.0.0.1:5000/jwks", True),
        ("http://127.0.0.2:5000/jwks", False),
    ],
)
def test_the_portal_calls_only_the_issuer_host_or_listed_addresses(settings, url, allowed):
    from sessions_app.identity.config import is_allowed

    settings.OIDC_ALLOWED_URLS = ["http://127.0.0.1:*"]
    assert is_allowed(url, "https://idp.example.com") is allowed


def test_the_invitee_also_finds_it_on_their_teams_page(
    client, cast, mailoutbox, django_capture_on_commit_callbacks
):
    invitation = _invite(cast, capture=django_capture_on_commit_callbacks)
    newcomer = UserFactory(username="newcomer", email="NEWCOMER@example.com")
    client.force_login(newcomer)
    page = client.get(reverse("sessions_app:team-list")).content.decode()
    assert (
        "Acme" in page and reverse("sessions_app:invitation-accept", args=[invitation.pk]) in page
    )
    # Someone else gets a 404 for it, there as everywhere.
    other = UserFactory(username="other", email="other@example.com")
    stranger = client.__class__()
    stranger.force_login(other)
    url = reverse("sessions_app:invitation-accept", args=[invitation.pk])
    assert stranger.post(url).status_code == 404
    assert client.post(url).status_code == 302
    assert Membership.objects.get(team=cast.team, user=newcomer).role == "approver"
    # And the emailed link has worked its once.
    assert client.get(_link(mailoutbox)).status_code == 410
