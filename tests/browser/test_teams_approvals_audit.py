"""The team page, the approvals inbox and the audit page in Chromium: their htmx forms
swap the fragment they change, the confirmations are asked, and what was done shows in
the audit history. Screenshots land in test-artifacts/screenshots/.
"""

from __future__ import annotations

import re

import pytest

from sessions_app.models import AuditEntry, Membership, OutboxAction
from tests.browser.conftest import sign_in, wait_until
from tests.factories import (
    ActivityFactory,
    ConnectionFactory,
    SessionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_admin_manages_the_team_in_place(page, live_server, cast, screenshot):
    UserFactory(username="newcomer")
    ConnectionFactory(team=cast.team, label="Acme Jules")
    sign_in(page, live_server, "admin")
    page.click("nav >> text=Teams")
    page.click("a:has-text('Acme')")
    page.wait_for_url(re.compile(r".*/teams/acme/$"))
    url = page.url

    page.fill("#id_username", "newcomer")
    page.select_option("#id_role", "approver")
    page.click("button:has-text('Add')")
    page.wait_for_selector("#team-members >> text=newcomer")
    assert page.url == url  # Swapped in place, no navigation.
    page.wait_for_selector(".toast >> text=newcomer joined as Approver.")
    assert Membership.objects.get(user__username="newcomer").role == "approver"

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
    for words in ("Member added", "Role changed", "Member removed", "Connection disabled"):
        assert page.locator(f"#audit-results >> text={words}").count() == 1, words
    # A filter refreshes the results in place and keeps them in the address.
    page.select_option("#id_action", "member.*")
    page.wait_for_url(re.compile(r".*action=member.*"))
    page.wait_for_selector("#audit-results >> text=3 entries")
    assert page.locator("#audit-results >> text=Connection disabled").count() == 0
    screenshot("11-audit")
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"member.add", "member.role_change", "member.remove", "policy.change"} <= actions


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
