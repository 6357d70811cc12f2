"""The launch gate on real PostgreSQL: workers admitting at the same moment never pass a cap.

docs/launch-queue.md
"""

from __future__ import annotations

import threading
from unittest import mock

import pytest
from django.db import connection as db_connection

from sessions_app.launch_queue import gate
from sessions_app.models import LaunchTicket, SessionState
from sessions_app.sessions import services
from tests.factories import ConnectionFactory, MembershipFactory, SessionFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _admit_together(actions):
    barrier = threading.Barrier(len(actions))
    admitted: list[str] = []
    failures: list[BaseException] = []

    def worker(action):
        try:
            barrier.wait(timeout=10)
            if gate.admit(action).admitted:
                admitted.append(str(action.pk))
        except BaseException as exc:  # Reported below, in the test's own thread.
            failures.append(exc)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=worker, args=(a,)) for a in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    return admitted


@pytest.mark.parametrize("round_", range(3))
def test_workers_admitting_at_once_never_pass_the_concurrent_cap(cast, round_):
    connection = ConnectionFactory(team=cast.team)
    caps = gate.caps_for(connection.pk)
    caps.tier, caps.concurrent_cap, caps.max_in_flight = "custom", 4, 10
    caps.save()
    SessionFactory(connection=connection, state=SessionState.IN_PROGRESS)
    launchers = [cast.member]
    for index in range(3):
        user = UserFactory(username=f"launcher{round_}-{index}")
        MembershipFactory(team=cast.team, user=user, role="member")
        launchers.append(user)
    with mock.patch("sessions_app.tasks.deliver_action.delay"):
        actions = [
            services.session_launch(user=launchers[i % 4], connection=connection, prompt=f"t{i}")
            for i in range(12)
        ]
    admitted = _admit_together(actions)
    # One slot is taken by the running session: three, and only three, start.
    assert len(admitted) == 3
    creating = LaunchTicket.objects.filter(status=LaunchTicket.Status.CREATING)
    assert creating.count() == 3
    # And they are the head of the fair order, whatever order the workers ran in.
    head = [str(t.pk) for t in gate.ordered(LaunchTicket.objects.all())[:3]]
    assert sorted(admitted) == sorted(head)


def test_workers_admitting_at_once_keep_to_the_creates_in_flight(cast):
    connection = ConnectionFactory(team=cast.team)
    caps = gate.caps_for(connection.pk)
    caps.max_in_flight = 2
    caps.save()
    with mock.patch("sessions_app.tasks.deliver_action.delay"):
        actions = [
            services.session_launch(user=cast.member, connection=connection, prompt=f"t{i}")
            for i in range(8)
        ]
    assert len(_admit_together(actions)) == 2
