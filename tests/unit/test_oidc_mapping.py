"""The group mapping (a pure module) and its re-application to memberships."""

from __future__ import annotations

import pytest

from sessions_app.identity import mapping
from sessions_app.identity.services import provider_roles_apply
from sessions_app.models import AuditEntry, Membership
from tests.factories import MembershipFactory, TeamFactory, UserFactory

RULES = "acme-admins=acme:admin, acme-devs=acme:member,everyone=globex:viewer,globex-leads=globex:approver"


def test_it_parses_group_team_and_role():
    rules = mapping.parse(RULES)
    assert rules[0] == mapping.Rule("acme-admins", "acme", "admin")
    assert len(rules) == 4
    # A group name may hold `=` or `:`; the team and role are read from the right.
    assert mapping.parse("cn=devs:eu=acme:viewer") == [mapping.Rule("cn=devs:eu", "acme", "viewer")]


@pytest.mark.parametrize(
    "text, words",
    [("acme-admins=acme", "not group=team-slug:role"), ("g=acme:owner", "names no role")],
)
def test_it_names_the_item_it_cannot_read(text, words):
    with pytest.raises(mapping.MappingError, match=words):
        mapping.parse(text)


def test_it_gives_the_highest_role_the_groups_reach():
    rules = mapping.parse(RULES)
    assert mapping.desired_roles(["acme-devs", "acme-admins", "everyone"], rules) == {
        "acme": "admin",
        "globex": "viewer",
    }
    assert mapping.desired_roles(["everyone", "globex-leads"], rules) == {"globex": "approver"}
    assert mapping.desired_roles(["unrelated"], rules) == {}


def test_it_reads_the_groups_claim_as_a_list():
    assert mapping.groups_of({"groups": ["a", 3, "b"]}, "groups") == ["a", "b"]
    assert mapping.groups_of({"roles": "a"}, "roles") == ["a"]
    assert mapping.groups_of({}, "groups") == []


def test_it_reapplies_only_the_memberships_the_provider_made(cast):
    rules = mapping.parse("acme-devs=acme:member,globex-devs=globex:approver")
    person = UserFactory(username="pat")
    # Pat was invited to Globex by hand as a viewer: the provider leaves that alone.
    MembershipFactory(team=cast.other_team, user=person, role="viewer")

    changes = provider_roles_apply(user=person, groups=["acme-devs", "globex-devs"], rules=rules)
    assert changes == ["You joined Acme as Member."]
    roles = {m.team.slug: (m.role, m.origin) for m in Membership.objects.filter(user=person)}
    assert roles == {"acme": ("member", "provider"), "globex": ("viewer", "manual")}

    # Unchanged groups: nothing is written or audited again.
    before = AuditEntry.objects.count()
    assert provider_roles_apply(user=person, groups=["acme-devs"], rules=rules) == []
    assert AuditEntry.objects.count() == before

    # Out of the group: the role from the provider goes, the manual one stays.
    assert provider_roles_apply(user=person, groups=[], rules=rules) == [
        "You are no longer in Acme."
    ]
    assert list(Membership.objects.filter(user=person).values_list("team__slug", "role")) == [
        ("globex", "viewer")
    ]
    removal = AuditEntry.objects.get(action="member.remove", team=cast.team)
    assert removal.actor_id is None and removal.actor_label == "identity provider"
    assert removal.details["origin"] == "provider"


def test_a_manual_role_change_is_not_undone_for_manual_members(cast):
    rules = mapping.parse("acme-admins=acme:admin")
    # The cast's viewer was added by hand; being in the admins' group does not promote them.
    assert provider_roles_apply(user=cast.viewer, groups=["acme-admins"], rules=rules) == []
    assert Membership.objects.get(team=cast.team, user=cast.viewer).role == "viewer"


def test_the_first_sign_in_makes_one_account_by_subject_not_by_email(db):
    from sessions_app.identity.services import identity_sign_in
    from sessions_app.models import ProviderIdentity

    # A local account already holds the address: the provider's person is not it.
    local = UserFactory(username="ada", email="ada@example.com")
    claims = {"sub": "s-1", "email": "ada@example.com", "preferred_username": "ada"}
    user = identity_sign_in(issuer="https://idp.example.com", claims=claims, groups=["x"])
    assert user.pk != local.pk and user.username == "ada-2" and not user.has_usable_password()
    again = identity_sign_in(
        issuer="https://idp.example.com", claims={**claims, "email": "new@example.com"}, groups=[]
    )
    assert again.pk == user.pk and again.email == "new@example.com"
    # The same subject at another issuer is another person.
    other = identity_sign_in(issuer="https://other.example.com", claims=claims, groups=[])
    assert other.pk not in {user.pk, local.pk}
    assert ProviderIdentity.objects.count() == 2


def test_an_unverified_address_is_not_taken_and_a_deactivated_account_is_refused(db):
    from sessions_app.identity.provider import SignInRefused
    from sessions_app.identity.services import identity_sign_in

    claims = {"sub": "s-2", "email": "boss@example.com", "email_verified": False}
    user = identity_sign_in(issuer="https://idp.example.com", claims=claims, groups=[])
    assert user.email == "" and user.username == "boss"
    user.is_active = False
    user.save()
    with pytest.raises(SignInRefused, match="deactivated"):
        identity_sign_in(issuer="https://idp.example.com", claims=claims, groups=[])


def test_a_nonce_signs_in_once_and_old_ones_are_forgotten(db):
    import datetime as dt

    from django.utils import timezone

    from sessions_app.identity.views import _nonce_first_use
    from sessions_app.models import UsedNonce

    assert _nonce_first_use("n-1") is True
    assert _nonce_first_use("n-1") is False
    UsedNonce.objects.update(created_at=timezone.now() - dt.timedelta(days=2))
    assert _nonce_first_use("n-2") is True
    assert UsedNonce.objects.count() == 1


def test_the_provider_never_removes_or_demotes_a_teams_last_admin(db):
    rules = mapping.parse("acme-admins=acme:admin,acme-devs=acme:member")
    team = TeamFactory(name="Acme", slug="acme")
    pat, sam = UserFactory(username="pat"), UserFactory(username="sam")
    provider_roles_apply(user=pat, groups=["acme-admins"], rules=rules)
    assert Membership.objects.get(team=team, user=pat).role == "admin"

    # Pat is Acme's only admin: leaving the groups or moving to the devs changes nothing.
    for groups in ([], ["acme-devs"]):
        changes = provider_roles_apply(user=pat, groups=groups, rules=rules)
        assert changes == [
            "You stay an admin of Acme: you are its last admin, so your groups change "
            "nothing there until someone else is one."
        ]
        assert Membership.objects.get(team=team, user=pat).role == "admin"
    assert not AuditEntry.objects.filter(action="member.remove").exists()

    # Once Sam is an admin too, Pat's groups apply again.
    provider_roles_apply(user=sam, groups=["acme-admins"], rules=rules)
    assert provider_roles_apply(user=pat, groups=["acme-devs"], rules=rules) == [
        "You are now Member in Acme."
    ]
    assert Membership.objects.get(team=team, user=pat).role == "member"
