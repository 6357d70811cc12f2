"""The team page, the approvals inbox and the audit page in Chromium: their htmx forms
swap the fragment they change, the confirmations are asked, and what was done shows in
the audit history. Screenshots land in test-artifacts/screenshots/.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core import mail
from django.utils import timezone

from sessions_app.identity.invitations import invitation_send
from sessions_app.models import AuditEntry, Invitation, Membership, OutboxAction
from tests.browser.conftest import sign_in, wait_until
from tests.factories import (
    ActivityFactory,
    ConnectionFactory,
    SessionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_admin_manages_the_team_in_place(page, browser, live_server, cast, screenshot):
    UserFactory(username="newcomer")
    ConnectionFactory(team=cast.team, label="Acme Jules")
    sign_in(page, live_server, "admin")
    page.click("nav >> text=Teams")
    page.click("a:has-text('Acme')")
    page.wait_for_url(re.compile(r".*/teams/acme/$"))
    url = page.url

    page.fill("#id_email", "newcomer@example.com")
    page.select_option("#id_role", "approver")
    page.click("button:has-text('Invite')")
    page.wait_for_selector("#team-members >> text=Waiting for an answer")
    assert page.url == url  # Swapped in place, no navigation.
    page.wait_for_selector(".toast >> text=join when they accept")
    assert not Membership.objects.filter(user__username="newcomer").exists()

    # The invitee accepts through the link the email carries (sent here as the worker's
    # task would: no worker runs in the browser tests).
    invitation_send(Invitation.objects.get(email="newcomer@example.com").pk)
    link = re.search(r"/invitations/join/[^/\s]+/", mail.outbox[0].body)
    assert link is not None
    other = browser.new_context(viewport={"width": 1280, "height": 900})
    invitee = other.new_page()
    sign_in(invitee, live_server, "newcomer")
    invitee.goto(live_server.url + link.group(0))
    invitee.click("#invitation-join >> button:has-text('Accept and join')")
    invitee.wait_for_selector(".toast >> text=You joined Acme as Approver.")
    other.close()
    assert Membership.objects.get(user__username="newcomer").role == "approver"
    page.reload()

    row = Membership.objects.get(user__username="newcomer").pk
    page.select_option(f"#role-{row}", "viewer")
    page.click(f"#membership-{row} >> button:has-text('Change')")
    wait_until(lambda: Membership.objects.get(pk=row).role == "viewer")

    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"#membership-{row} >> button:has-text('Remove')")
    wait_until(lambda: not Membership.objects.filter(pk=row).exists())
    page.wait_for_selector(f"#membership-{row}", state="detached")

    page.click("#team-connections >> button:has-text('Disable')")
    page.wait_for_selector("#team-connections >> .badge:has-text('Disabled')")
    page.check("#id_forbid_self_approval")
    page.click("button:has-text('Save the policy')")
    page.wait_for_selector(".toast >> text=Approval policy saved.")
    screenshot("10-team-admin")

    page.click('a:has-text("The team\'s audit history")')
    page.wait_for_selector("#audit-results")
    for words in ("Role changed", "Member removed", "Connection disabled"):
        assert page.locator(f"#audit-results >> text={words}").count() == 1, words
    # A filter refreshes the results in place and keeps them in the address.
    page.select_option("#id_action", "member.*")
    page.wait_for_url(re.compile(r".*action=member.*"))
    page.wait_for_selector("#audit-results >> text=4 entries")
    assert page.locator("#audit-results >> text=Connection disabled").count() == 0
    screenshot("11-audit")
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"member.invite", "member.accept", "member.role_change", "member.remove"} <= actions
    assert "policy.change" in actions


def test_the_team_page_fits_a_phone_with_long_unbroken_names(page, live_server, cast):
    # Usernames take 120 characters; team names and labels at most 100.
    long_name = "x" * 100
    cast.team.name = "T" * 100
    cast.team.save()
    UserFactory(username="u" * 120)
    connection = ConnectionFactory(team=cast.team, label=long_name)
    from sessions_app.models import Invitation

    Invitation.objects.create(
        team=cast.team,
        role="member",
        invited_user=UserFactory(username="i" * 120),
        token_hash="p" * 64,
        expires_at=timezone.now() + dt.timedelta(days=1),
    )
    Membership.objects.create(team=cast.team, user=UserFactory(username="m" * 120))
    sign_in(page, live_server, "admin")
    page.set_viewport_size({"width": 375, "height": 800})
    for path in (
        f"/teams/{cast.team.slug}/",
        "/teams/",
        f"/connections/{connection.pk}/",
        f"/connections/{connection.pk}/remove/",
    ):
        page.goto(live_server.url + path)
        page.wait_for_selector("main")
        widths = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1], (path, widths)
    # The help texts are shown, next to the fields they explain.
    page.goto(f"{live_server.url}/teams/{cast.team.slug}/")
    help_id = page.get_attribute("#id_api_key", "aria-describedby")
    assert help_id and "never shown again" in page.inner_text(f"#{help_id}")


def test_an_approver_approves_from_the_inbox(page, live_server, cast, screenshot, monkeypatch):
    # Delivery is the outbox's business (tested elsewhere): here it is only counted.
    from sessions_app import tasks

    enqueued: list[str] = []
    monkeypatch.setattr(tasks.deliver_action, "delay", enqueued.append)
    connection = ConnectionFactory(team=cast.team)
    sessions = []
    for index, title in enumerate(["Older plan", "Newer plan"]):
        session = SessionFactory(
            connection=connection,
            title=title,
            state="AWAITING_PLAN_APPROVAL",
            launched_by=cast.member,
        )
        ActivityFactory(
            session=session,
            kind="planGenerated",
            plan_id=f"{index + 1:032x}",
            plan_steps=[{"title": f"Step of {title}"}],
        )
        sessions.append(session)
    sign_in(page, live_server, "approver")
    page.click("nav >> text=Approvals")
    page.wait_for_selector("text=Step of Older plan")
    screenshot("12-approvals")

    older = sessions[0]
    # Dismissing the confirmation approves nothing.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click(f"#approval-row-{older.pk} >> button:has-text('Approve plan')")
    page.wait_for_timeout(300)
    assert not OutboxAction.objects.filter(kind="approve").exists()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"#approval-row-{older.pk} >> button:has-text('Approve plan')")
    page.wait_for_selector(f"#approval-row-{older.pk} >> text=Approval pending delivery")
    # The other row still offers its approval (and its "Request changes" form).
    assert (
        page.locator(f"#approval-row-{sessions[1].pk} >> button:has-text('Approve plan')").count()
        == 1
    )
    action = OutboxAction.objects.get(kind="approve")
    assert action.session_id == older.pk and action.actor == cast.approver
    assert enqueued == [str(action.pk)]
