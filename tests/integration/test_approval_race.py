"""Two people approving the same plan at the same moment, on real PostgreSQL row locks."""

from __future__ import annotations

import threading
from unittest import mock

import pytest
from django.db import connection as db_connection

from sessions_app import services
from sessions_app.models import AuditEntry, Membership, OutboxAction
from tests.factories import ActivityFactory, ConnectionFactory, SessionFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_records_one_approval_when_approvers_click_together(cast):
    approvers = [cast.approver, cast.admin]
    for index in range(4):
        user = UserFactory(username=f"approver{index}")
        Membership.objects.create(team=cast.team, user=user, role="approver")
        approvers.append(user)
    session = SessionFactory(
        connection=ConnectionFactory(team=cast.team), state="AWAITING_PLAN_APPROVAL"
    )
    ActivityFactory(session=session, kind="planGenerated", plan_id="f" * 32)
    barrier = threading.Barrier(len(approvers))
    results: list[str] = []
    failures: list[BaseException] = []

    def click(user: object) -> None:
        try:
            barrier.wait(timeout=10)
            action = services.session_approve_plan(user=user, session=session)
            results.append(str(action.pk))
        except BaseException as exc:  # Reported below, in the test's own thread.
            failures.append(exc)
        finally:
            db_connection.close()

    with mock.patch("sessions_app.tasks.deliver_action.delay"):
        threads = [threading.Thread(target=click, args=(user,)) for user in approvers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert not failures, failures
    assert len(results) == len(approvers) and len(set(results)) == 1
    assert OutboxAction.objects.filter(kind="approve").count() == 1
    assert AuditEntry.objects.filter(action="session.approve").count() == 1
