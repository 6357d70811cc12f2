"""The analytics rollup on PostgreSQL: the sync's own store (COPY, the writer thread)
keeps one row per session, a re-sync writes none, and the page's figures add up."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from jules.client import JulesClient
from jules_simulator import start_simulator
from sessions_app import sync
from sessions_app.analytics.rollup import refresh_facts
from sessions_app.models import JulesConnection, Session, SessionFacts
from sessions_app.sync.store import store_for
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_postgresql_sync_keeps_the_rollup(cast, client):
    assert store_for().name == "postgresql"
    sim = start_simulator(
        api_keys=["pg-key"], manual_clock=True, seed=5, seed_sessions=150, activities_per_session=8
    )
    try:
        conn = ConnectionFactory(team=cast.team, base_url=sim.base_url, api_key="pg-key")
        report = sync.sync_connection(conn.pk, full=True, workers=4)
        assert report.errors == []
        states = dict(Session.objects.filter(connection=conn).values_list("pk", "state"))
        assert len(states) == 150
        assert dict(SessionFacts.objects.values_list("session_id", "state")) == states
        assert SessionFacts.objects.filter(plans_generated__gt=0, lines_added__gt=0).exists()
        # The rows made from what the sync held in memory are those the stored rows give.
        assert refresh_facts(states) == 0
        stamps = dict(SessionFacts.objects.values_list("session_id", "computed_at"))
        JulesConnection.objects.filter(pk=conn.pk).update(last_full_sync_at=None)
        sync.sync_connection(conn.pk, full=True, workers=4)
        assert dict(SessionFacts.objects.values_list("session_id", "computed_at")) == stamps
        # A session that moves on Jules moves in the rollup with the next pass.
        remote = JulesClient("pg-key", sim.base_url).create_session(
            prompt="Fix it", source="sources/github/acme/billing", starting_branch="main"
        )
        sim.advance(2000)
        JulesConnection.objects.filter(pk=conn.pk).update(last_full_sync_at=None)
        sync.sync_connection(conn.pk, full=True, workers=4)
        new = Session.objects.get(connection=conn, remote_id=remote.id)
        assert SessionFacts.objects.get(session=new).state == new.state
    finally:
        sim.stop()
    client.force_login(cast.viewer)
    since = timezone.localdate() - dt.timedelta(days=700)
    response = client.get(
        reverse("sessions_app:team-analytics-csv", args=["acme", "sessions"]),
        {"created_after": since.isoformat(), "per": "week"},
    )
    assert response.status_code == 200
    total = sum(int(line.rsplit(",", 1)[1]) for line in response.content.decode().splitlines()[1:])
    assert total == SessionFacts.objects.filter(created_day__gte=since).count() > 0
