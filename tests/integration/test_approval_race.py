"""Two people approving the same plan at the same moment, on real PostgreSQL row locks."""

from __future__ import annotations

import threading
from typing import Any
from unittest import mock

import pytest
from django.db import connection as db_connection

from sessions_app.models import AuditEntry, Membership, OutboxAction
from sessions_app.sessions import services
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


def test_it_calls_jules_once_when_approvers_click_together_with_real_workers(
    cast, simulator, workers
):
    """Clicks on the approve endpoint at one moment, delivered by two real Celery workers
    that also receive duplicated delivery tasks: one approvePlan reaches Jules."""
    from django.test import Client
    from django.urls import reverse

    from jules.client import JulesClient
    from sessions_app import sync, tasks
    from tests.integration.conftest import wait_for

    connection = ConnectionFactory(team=cast.team, base_url=simulator.base_url, api_key="test-key")
    remote = JulesClient("test-key", simulator.base_url).create_session(
        prompt="Approve me once", require_plan_approval=True
    )
    simulator.advance(70)
    session = sync.upsert_remote_session(connection, remote, launched_by=cast.member)
    sync.sync_one_session(session.pk)
    session.refresh_from_db()
    assert session.state == "AWAITING_PLAN_APPROVAL"
    workers.start("a1", queues="actions")
    workers.start("a2", queues="actions")

    approvers = [cast.approver, cast.admin]
    for index in range(2):
        user = UserFactory(username=f"clicker{index}")
        Membership.objects.create(team=cast.team, user=user, role="approver")
        approvers.append(user)
    barrier = threading.Barrier(len(approvers))
    statuses: list[int] = []
    failures: list[BaseException] = []
    url = reverse("sessions_app:session-approve", args=[session.pk])

    def click(user: Any) -> None:
        try:
            client = Client()
            client.force_login(user)
            barrier.wait(timeout=10)
            statuses.append(client.post(url).status_code)
        except BaseException as exc:  # Reported below, in the test's own thread.
            failures.append(exc)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=click, args=(user,)) for user in approvers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not failures, failures
    assert statuses == [302] * len(approvers)
    action = OutboxAction.objects.get(kind="approve")
    # Duplicated deliveries, as a redelivered or swept task would cause.
    for _ in range(3):
        tasks.deliver_action.delay(str(action.pk))
    wait_for(lambda: OutboxAction.objects.filter(pk=action.pk, status="done").exists(), 60)
    # Let the duplicates run out before counting.
    wait_for(lambda: not workers_busy(), 30)
    assert simulator.request_counts()["sessions.approvePlan"] == 1
    assert OutboxAction.objects.filter(kind="approve").count() == 1
    entry = AuditEntry.objects.get(action="session.approve")
    assert entry.details["plan_id"] == action.payload["plan_id"] != ""
    assert entry.actor_id in {user.pk for user in approvers}


def workers_busy() -> bool:
    from julesweb.celery import app

    inspect = app.control.inspect(timeout=1.0)
    active = inspect.active() or {}
    reserved = inspect.reserved() or {}
    return any(active.values()) or any(reserved.values())
