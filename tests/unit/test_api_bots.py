"""A service token's bot is a member of its team for the role checks and the audit, but
the pages never take it for a person (docs/api.md, "Authentication")."""

from __future__ import annotations

import pytest
from django.urls import reverse

from sessions_app.access import ActionNotAllowed
from sessions_app.api.tokens import token_create
from sessions_app.models import Membership
from sessions_app.teams import services
from tests.factories import ConnectionFactory, SessionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def bot(cast):
    token, _ = token_create(
        user=cast.admin, name="deploy", scopes=["read"], team=cast.team, role="admin"
    )
    return token


def test_the_team_page_lists_people_and_counts_the_tokens_apart(client, cast, bot):
    client.force_login(cast.admin)
    page = client.get(reverse("sessions_app:team-detail", args=[cast.team.slug]))
    html = page.content.decode()
    membership = Membership.objects.get(user=bot.user)
    assert f'id="membership-{membership.pk}"' not in html
    assert bot.user.get_username() not in html
    assert "And 1 service token, which acts as member of the team but is not people" in html
    assert reverse("sessions_app:team-tokens", args=[cast.team.slug]) in html
    assert 'id="membership-' + str(Membership.objects.get(user=cast.viewer).pk) in html


def test_a_bots_membership_is_not_removed_or_changed_as_a_persons(client, cast, bot):
    client.force_login(cast.admin)
    membership = Membership.objects.get(user=bot.user)
    remove = reverse("sessions_app:member-remove", args=[cast.team.slug, membership.pk])
    role = reverse("sessions_app:member-role", args=[cast.team.slug, membership.pk])
    assert client.post(remove).status_code == 404
    assert client.post(role, {"role": "viewer"}).status_code == 404
    assert Membership.objects.get(pk=membership.pk).role == "admin"


def test_an_admin_token_does_not_count_as_the_teams_other_admin(cast, bot):
    mine = Membership.objects.get(user=cast.admin, team=cast.team)
    with pytest.raises(ActionNotAllowed):
        services.membership_remove(actor=cast.admin, membership=mine)
    with pytest.raises(ActionNotAllowed):
        services.membership_change_role(actor=cast.admin, membership=mine, role="member")
    assert Membership.objects.get(pk=mine.pk).role == "admin"


def test_the_launched_by_menu_names_a_bot_as_a_token_after_the_people(client, cast, bot):
    SessionFactory(connection=ConnectionFactory(team=cast.team), launched_by=bot.user)
    client.force_login(cast.viewer)
    html = client.get(reverse("sessions_app:session-list")).content.decode()
    start = html.index('name="launched_by"')
    menu = html[start : html.index("</select>", start)]
    label = f"deploy (service token {bot.prefix})"
    assert label in menu and "token:" not in menu
    assert menu.index(">viewer<") < menu.index(label)
