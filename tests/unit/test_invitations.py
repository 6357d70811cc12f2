"""Joining a team takes the person's consent: invitations, and what team admins may read
of a person's sign-ins."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from sessions_app.access import ActionNotAllowed
from sessions_app.audit import chain as audit
from sessions_app.audit.selectors import audit_entries_for_user
from sessions_app.connections import crypto
from sessions_app.identity import invitations
from sessions_app.models import AuditEntry, Invitation, Membership
from sessions_app.teams import services
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _invite(cast, username="newcomer", role="member"):
    # By email, to the address the factories give the account of that name.
    return invitations.invitation_create_by_email(
        actor=cast.admin, team=cast.team, email=f"{username}@example.com", role=role
    )


def test_an_invitation_is_accepted_once_by_the_invitee_only(cast):
    newcomer = UserFactory(username="newcomer")
    invitation = _invite(cast, role="approver")
    # The token is kept hashed, and encrypted only until its email is out.
    token = crypto.decrypt(invitation.token_sealed)
    assert (
        invitation.token_hash == services.token_hash(token) and token not in invitation.token_hash
    )
    assert not Membership.objects.filter(user=newcomer).exists()
    with pytest.raises(ActionNotAllowed, match="pending invitation"):
        _invite(cast)
    from django.http import Http404

    with pytest.raises(Http404):
        services.invitation_accept(actor=cast.admin, invitation=invitation)
    membership = services.invitation_accept(actor=newcomer, invitation=invitation)
    assert membership.role == "approver" and membership.team == cast.team
    invitation.refresh_from_db()
    assert invitation.status == "accepted" and invitation.answered_at is not None
    with pytest.raises(ActionNotAllowed, match="already accepted"):
        services.invitation_accept(actor=newcomer, invitation=invitation)
    with pytest.raises(ActionNotAllowed, match="already in the team"):
        _invite(cast)
    actions = list(
        AuditEntry.objects.filter(action__startswith="member.")
        .order_by("seq")
        .values_list("action", "actor_label")
    )
    assert actions == [("member.invite", "admin"), ("member.accept", "newcomer")]


def test_an_expired_invitation_cannot_be_accepted_and_can_be_renewed(cast):
    newcomer = UserFactory(username="newcomer")
    invitation = _invite(cast)
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    invitation.refresh_from_db()
    with pytest.raises(ActionNotAllowed, match="expired"):
        services.invitation_accept(actor=newcomer, invitation=invitation)
    assert not Membership.objects.filter(user=newcomer).exists()
    renewed = _invite(cast)
    assert renewed.pk != invitation.pk and renewed.is_open()


def test_declining_and_revoking_are_audited_and_final(cast):
    newcomer = UserFactory(username="newcomer")
    other = UserFactory(username="other")
    declined = _invite(cast)
    services.invitation_decline(actor=newcomer, invitation=declined)
    with pytest.raises(ActionNotAllowed):
        services.invitation_accept(
            actor=newcomer, invitation=Invitation.objects.get(pk=declined.pk)
        )
    revoked = _invite(cast, username="other")
    with pytest.raises(ActionNotAllowed, match="admin"):
        services.invitation_revoke(actor=cast.approver, invitation=revoked)
    services.invitation_revoke(actor=cast.admin, invitation=revoked)
    with pytest.raises(ActionNotAllowed, match="already revoked"):
        services.invitation_accept(actor=other, invitation=Invitation.objects.get(pk=revoked.pk))
    assert not Membership.objects.filter(user__in=[newcomer, other]).exists()
    assert AuditEntry.objects.filter(action="member.decline", actor_label="newcomer").count() == 1
    assert (
        AuditEntry.objects.filter(action="member.revoke", target_label="other@example.com").count()
        == 1
    )


def test_the_invitee_sees_and_answers_invitations_on_the_teams_page(client, cast):
    newcomer = UserFactory(username="newcomer")
    invitation = _invite(cast, role="viewer")
    client.force_login(newcomer)
    html = client.get(reverse("sessions_app:team-list")).content.decode()
    assert "Invitations for you" in html and "Acme" in html and "Accept and join" in html
    response = client.post(reverse("sessions_app:invitation-accept", args=[invitation.pk]))
    assert response.status_code == 302
    assert Membership.objects.get(user=newcomer).role == "viewer"
    html = client.get(reverse("sessions_app:team-list")).content.decode()
    assert "Invitations for you" not in html
    # A second answer is refused with a message, not an error page.
    again = client.post(
        reverse("sessions_app:invitation-decline", args=[invitation.pk]), follow=True
    )
    assert "already accepted" in again.content.decode()


def test_an_admin_reads_a_members_sign_ins_only_since_they_joined(cast):
    newcomer = UserFactory(username="newcomer")
    before = audit.record("auth.sign_in", actor=newcomer, details={})
    failed_before = audit.record("auth.sign_in_failed", actor_label="newcomer", details={})
    invitation = _invite(cast)
    services.invitation_accept(actor=newcomer, invitation=invitation)
    after = audit.record("auth.sign_in", actor=newcomer, details={})
    seen = set(audit_entries_for_user(cast.admin).values_list("pk", flat=True))
    assert after.pk in seen
    assert before.pk not in seen and failed_before.pk not in seen
    # The person still sees their own history, all of it.
    own = set(audit_entries_for_user(newcomer).values_list("pk", flat=True))
    assert {before.pk, failed_before.pk, after.pk} <= own
