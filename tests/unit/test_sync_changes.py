"""The changes pass (issue 19): the first list page says which sessions changed, so only
those are written and have their activities read; live sessions deeper than the page keep
their one-by-one GET on their cadence."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.utils import timezone

from jules.client import JulesClient
from jules_simulator.scenarios import parse_scenario
from sessions_app import sync
from sessions_app.models import Activity, JulesConnection, Session

pytestmark = pytest.mark.django_db

KEY = "test-key"


def _live(sim, prompt="Live work"):
    """A session that waits for plan approval in the simulator (it can still move)."""
    account = sim.state.account(KEY)
    session = sim.state.create_session(
        account, {"prompt": prompt, "require_plan_approval": True}, parse_scenario("plan_approval")
    )
    return session.id


def _resting(sim, count):
    account = sim.state.account(KEY)
    ids = []
    with sim.state.lock:
        for n in range(count):
            session = sim.state.create_session(
                account, {"prompt": f"Done {n}"}, parse_scenario("happy")
            )
            session.next_us = None
            session.phase = "done"
            sim.state.set_state(account, session, "COMPLETED")
            ids.append(session.id)
    return ids


def _change(sim, session_id, state=None):
    """A new activity (and optionally a state) on a session, now; the activity's id."""
    world = sim.state
    account = world.account(KEY)
    with world.lock:
        world.tick(account)
        session = account.sessions[session_id]
        now = world.clock.now_us()
        activity = world.add_activity(
            session, "progressUpdated", {"title": "Moved"}, at=now, rng=random.Random(3)
        )
        if state:
            world.set_state(account, session, state)
        world.touch(session, now)
    return activity.id


def _synced(sim, connection):
    """A first (full) sync, then the connection as between two listings: the next pass
    is a changes pass, and every live session is due for its own read."""
    sim.advance(90)  # Past planning: the live sessions wait for approval.
    report = sync.sync_connection(connection.pk, full=True)
    assert report.errors == []
    now = timezone.now()
    JulesConnection.objects.filter(pk=connection.pk).update(
        last_list_at=now, last_full_sync_at=now, last_sources_sync_at=now
    )
    _make_due(connection)


def _make_due(connection):
    Session.objects.filter(connection=connection, next_poll_at__isnull=False).filter(
        state="AWAITING_PLAN_APPROVAL"
    ).update(next_poll_at=timezone.now() - dt.timedelta(seconds=1))


def _requests(sim, run):
    before = sim.request_counts()
    result = run()
    after = sim.request_counts()
    names = ("sessions.list", "sessions.get", "sessions.activities.list", "sources.list")
    return result, {name: after.get(name, 0) - before.get(name, 0) for name in names}


def test_it_reads_only_the_changed_sessions_of_the_first_page(simulator, sim_connection):
    live = [_live(simulator, f"Live {n}") for n in range(3)]
    _synced(simulator, sim_connection)
    moved = _change(simulator, live[1], state="AWAITING_USER_FEEDBACK")
    report, counts = _requests(simulator, lambda: sync.sync_connection(sim_connection.pk))
    assert report.errors == []
    assert counts == {
        "sessions.list": 1,
        "sessions.get": 0,
        "sessions.activities.list": 1,
        "sources.list": 0,
    }
    changed = Session.objects.get(remote_id=live[1])
    assert changed.state == "AWAITING_USER_FEEDBACK"
    assert Activity.objects.filter(session=changed, remote_id=moved).exists()
    # The unchanged ones were only rescheduled on their cadence.
    for remote_id in (live[0], live[2]):
        row = Session.objects.get(remote_id=remote_id)
        assert row.next_poll_at > timezone.now()
        assert row.state == "AWAITING_PLAN_APPROVAL"


def test_it_makes_one_request_when_nothing_changed(simulator, sim_connection):
    for n in range(3):
        _live(simulator, f"Live {n}")
    _synced(simulator, sim_connection)
    report, counts = _requests(simulator, lambda: sync.sync_connection(sim_connection.pk))
    assert report.errors == [] and report.sessions_updated == 0
    assert counts["sessions.list"] == 1
    assert sum(counts.values()) == 1


def test_it_still_gets_a_live_session_deeper_than_the_first_page(simulator, sim_connection):
    deep = _live(simulator, "Older live work")
    shallow = _live(simulator, "Newer live work")
    _resting(simulator, 100)  # Newer than both: the first page holds only these.
    _synced(simulator, sim_connection)
    moved = _change(simulator, deep)
    _change(simulator, shallow)
    report, counts = _requests(simulator, lambda: sync.sync_connection(sim_connection.pk))
    assert report.errors == []
    assert counts["sessions.list"] == 1
    # Both are past the first page: each is read by its own GET, as it is due.
    assert counts["sessions.get"] == 2
    assert counts["sessions.activities.list"] == 2
    assert Activity.objects.filter(session__remote_id=deep, remote_id=moved).exists()
    # Not due again until its cadence comes round: the next pass GETs neither.
    _, counts = _requests(simulator, lambda: sync.sync_connection(sim_connection.pk))
    assert counts["sessions.get"] == 0


def test_it_brings_a_new_session_in_one_changes_pass(simulator, sim_connection):
    _live(simulator)
    _synced(simulator, sim_connection)
    created = _live(simulator, "Started in the Jules web app")
    _change(simulator, created)
    report, counts = _requests(simulator, lambda: sync.sync_connection(sim_connection.pk))
    assert report.errors == [] and report.sessions_created == 1
    assert counts["sessions.list"] == 1 and counts["sessions.get"] == 0
    row = Session.objects.get(remote_id=created)
    assert row.activities.count() == len(simulator.state.session(created).activities)


class _OneBadItem(JulesClient):
    """Lists one session under an id the portal refuses."""

    def __init__(self, spoiled: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.spoiled = spoiled

    def list_sessions(self, *args, **kwargs):
        page = super().list_sessions(*args, **kwargs)
        for item in page.items:
            if item.id == self.spoiled:
                item.id = "not an id!"
        return page


def test_a_malformed_list_item_loses_nothing(simulator, sim_connection):
    spoiled, other = _live(simulator, "Spoiled"), _live(simulator, "Other")
    _synced(simulator, sim_connection)
    moved = _change(simulator, spoiled)
    moved_other = _change(simulator, other)
    client = _OneBadItem(spoiled, KEY, simulator.base_url)
    report, counts = _requests(
        simulator, lambda: sync.sync_connection(sim_connection.pk, client=client)
    )
    assert any("not an id the portal accepts" in e for e in report.errors)
    # The listed one is written from the list; the one the list could not name is read by
    # its own GET, so its change lands too and nothing is marked deleted.
    assert counts["sessions.get"] == 1
    assert Activity.objects.filter(session__remote_id=other, remote_id=moved_other).exists()
    assert Activity.objects.filter(session__remote_id=spoiled, remote_id=moved).exists()
    assert not Session.objects.filter(deleted_remotely=True).exists()


def test_it_schedules_passes_at_the_changes_cadence(simulator, sim_connection, settings):
    settings.SYNC_CHANGES_SECONDS = 4
    settings.SYNC_ACTIVE_SECONDS = 10
    now = timezone.now()

    def started(seconds_ago):
        JulesConnection.objects.filter(pk=sim_connection.pk).update(
            last_sync_started_at=now - dt.timedelta(seconds=seconds_ago)
        )

    started(3.0)
    assert sim_connection.pk not in sync.due_connections(now)
    # A pass that started just after the previous beat is due at this one.
    started(3.7)
    assert sim_connection.pk in sync.due_connections(now)
    settings.SYNC_CHANGES_SECONDS = 0
    assert sim_connection.pk not in sync.due_connections(now)
    started(9.7)
    assert sim_connection.pk in sync.due_connections(now)
