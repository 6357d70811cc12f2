"""Requests in flight during a sync: the client's adaptive limit decides, not a fixed pool
(jules/inflight.py)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from jules.client import JulesClient
from sessions_app import sync
from sessions_app.connections.client import sync_client
from sessions_app.models import Activity, Session
from sessions_app.sync import engine
from sessions_app.sync.store import store_for
from sessions_app.sync.writers import SyncReport
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db


class Concurrency:
    """Counts the GET attempts under way at once on a client."""

    def __init__(self, client: JulesClient) -> None:
        self.peak = 0
        self._now = 0
        self._lock = threading.Lock()
        attempt = client._attempt

        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self._now += 1
                self.peak = max(self.peak, self._now)
            try:
                return attempt(*args, **kwargs)
            finally:
                with self._lock:
                    self._now -= 1

        client._attempt = counted  # type: ignore[method-assign]


@pytest.fixture
def slow_account(cast):
    from jules_simulator import start_simulator

    sim = start_simulator(
        api_keys=["test-key"],
        manual_clock=True,
        seed=3,
        seed_sessions=80,
        activities_per_session=2,
    )
    # Every request waits, as over a real network: more in flight finishes sooner.
    sim.add_fault("kind=latency,seconds=0.03")
    connection = ConnectionFactory(team=cast.team, base_url=sim.base_url, api_key="test-key")
    yield sim, connection
    sim.stop()


def test_it_grows_past_the_starting_concurrency_and_stays_under_the_ceiling(slow_account, settings):
    _sim, connection = slow_account
    settings.JULES_SYNC_CONCURRENCY = 2
    settings.JULES_SYNC_MAX_IN_FLIGHT = 6
    client = sync_client(connection)
    seen = Concurrency(client)
    report = sync.sync_connection(connection.pk, full=True, client=client)
    assert report.errors == []
    assert Session.objects.filter(connection=connection).count() == 80
    assert Activity.objects.filter(session__connection=connection).count() == 160
    assert client.inflight is not None
    assert client.inflight.limit > 2
    assert seen.peak > 2
    assert seen.peak <= 6
    assert client.inflight.peak <= 6


def test_it_keeps_the_fixed_concurrency_for_a_client_without_a_limit(slow_account, settings):
    _sim, connection = slow_account
    settings.JULES_SYNC_CONCURRENCY = 3
    client = sync_client(connection)
    client.inflight = None
    seen = Concurrency(client)
    report = sync.sync_connection(connection.pk, full=True, client=client)
    assert report.errors == []
    assert seen.peak == 3


def test_one_request_in_flight_reads_every_activity_without_a_pool(slow_account, monkeypatch):
    _sim, connection = slow_account
    client = sync_client(connection)
    remote_ids = [s.id for s in client.list_sessions(page_size=3).items if s.id]
    sessions = [
        Session.objects.create(team=connection.team, connection=connection, remote_id=remote_id)
        for remote_id in remote_ids
    ]
    seen = Concurrency(client)

    def no_pool(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a pool for one request in flight")

    monkeypatch.setattr(engine, "ThreadPoolExecutor", no_pool)
    report = SyncReport()
    engine.sync_activities(
        client, connection, sessions, store=store_for(), report=report, workers=1
    )
    assert report.errors == []
    assert seen.peak == 1
    assert report.activities_created == 6
    assert Activity.objects.filter(session__in=sessions).count() == 6
