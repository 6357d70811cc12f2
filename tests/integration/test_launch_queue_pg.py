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


def test_real_workers_drain_the_queue_within_the_caps_they_learn(cast, workers):
    """Launches past an account's caps, delivered by two real Celery workers while the
    test plays beat (sync, sweep, tick): every launch starts, none fails, and Jules'
    own counts show the caps were kept after the one refusal that taught them."""
    import time

    from jules_simulator import SimulatorConfig, start_simulator
    from sessions_app import sync, tasks
    from sessions_app.models import LaunchCaps, OutboxAction
    from sessions_app.outbox import delivery
    from tests.integration.conftest import align_simulator_clock, wait_for

    config = SimulatorConfig(concurrent_cap=2, parallel_create_limit=3)
    sim = start_simulator(api_keys=["queue-key"], manual_clock=True, config=config)
    try:
        align_simulator_clock(sim)
        cast.team.require_plan_approval = False
        cast.team.save()
        connection = ConnectionFactory(team=cast.team, base_url=sim.base_url, api_key="queue-key")
        sync.sync_connection(connection.pk)
        workers.extra_env = {"OUTBOX_BACKOFF_SECONDS": "1", "JULES_RETRY_BUDGET": "5"}
        workers.start("q1", queues="actions")
        workers.start("q2", queues="actions")
        for index in range(6):
            services.session_launch(
                user=[cast.member, cast.approver][index % 2],
                connection=connection,
                prompt=f"Queued task {index}",
                require_plan_approval=False,
            )
        # Jules' clock stands still: two sessions run, the third create is refused, and
        # the refusal teaches the cap.
        wait_for(
            lambda: LaunchCaps.objects.filter(pk=connection.pk, learned_concurrent_cap=2).exists(),
            60,
        )
        deadline = time.monotonic() + 120
        while LaunchTicket.objects.exclude(status=LaunchTicket.Status.STARTED).exists():
            assert time.monotonic() < deadline, list(
                OutboxAction.objects.values_list("status", "last_error")
            )
            sim.advance(60)
            sync.sync_connection(connection.pk, full=True)
            delivery.sweep()
            tasks.tick_launch_queue.delay()
            time.sleep(1)
        assert not OutboxAction.objects.filter(status="failed").exists()
        [account] = sim.quotas().values()
        assert account["created"] == 6 and account["peak_busy"] <= 2
        assert account["parallel_create_failures"] == 0
        # Unset, the caps were learned from Jules' first refusal, and kept from then on.
        assert LaunchCaps.objects.get(pk=connection.pk).learned_concurrent_cap == 2
        assert 1 <= account["refused_concurrent"] <= 2
    finally:
        sim.stop()
