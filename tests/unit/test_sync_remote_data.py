"""Odd records from Jules never stop a sync, and a reused id never merges two sessions.

The odd records are put into the simulator's world as the service would send them (their
JSON as bytes, so that a lone surrogate travels as the `\\ud800` escape JSON allows). The
integration group runs this module again on PostgreSQL (test_sync_remote_data_pg.py).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest

from jules.client import JulesClient
from jules_simulator import SimActivity, SimSession, start_simulator
from sessions_app import sync
from sessions_app.models import (
    Activity,
    AuditEntry,
    JulesConnection,
    Session,
    SessionTransition,
    Source,
)
from sessions_app.models.jules import SyncStatus
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db
KEY = "test-key"


@pytest.fixture
def world(cast: Any) -> Iterator[tuple[Any, Any]]:
    sim = start_simulator(api_keys=[KEY], manual_clock=True, seed=31, seed_sessions=6)
    connection = ConnectionFactory(team=cast.team, base_url=sim.base_url, api_key=KEY)
    try:
        yield sim, connection
    finally:
        sim.stop()


def _inject(
    sim: Any,
    session_id: str,
    *,
    changes: dict[str, Any] | None = None,
    activities: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> None:
    """A finished session in the simulator's world whose JSON says what `changes` say."""
    world = sim.state
    account = world.account(KEY)
    now = world.now_us()
    session = SimSession(
        id=session_id,
        account_id=account.id,
        prompt="An odd one",
        title="An odd one",
        create_us=now,
        update_us=now,
        state="COMPLETED",
        phase="done",
    )
    data = session.to_dict()
    data.update(changes or {})
    with world.lock:
        world.insert_session(account, session)
        for n, extra in enumerate(activities):
            activity = SimActivity(session_id, f"{n:032x}", now - 1000 + n, "agent", "", None)
            body = {
                "name": f"sessions/{session_id}/activities/{n:032x}",
                "id": f"{n:032x}",
                "createTime": "2026-01-01T00:00:00Z",
                "originator": "agent",
                "progressUpdated": {"title": "Step"},
                **extra,
            }
            body = {k: v for k, v in body.items() if v is not None}
            activity._json = json.dumps(body).encode()
            session.activities.append(activity)
        # ensure_ascii: a lone surrogate goes out as its escape, as JSON allows.
        session._json = json.dumps(data).encode()


def _full_pass(connection: JulesConnection) -> sync.SyncReport:
    JulesConnection.objects.filter(pk=connection.pk).update(last_full_sync_at=None)
    return sync.sync_connection(connection.pk, full=True)


def _assert_healthy(connection: JulesConnection) -> None:
    connection.refresh_from_db()
    assert connection.sync_status == SyncStatus.OK, connection.last_error
    assert connection.last_error == ""


@pytest.mark.parametrize(
    "odd_id", ["123/456", "../../sources", "12 34", "12~34", "é1234", "9" * 41, ""]
)
def test_it_skips_a_session_whose_id_it_cannot_use_and_syncs_the_rest(world, odd_id):
    sim, connection = world
    _inject(sim, odd_id)
    report = _full_pass(connection)
    _assert_healthy(connection)
    assert len(report.errors) == 1
    assert repr(odd_id)[:20] in report.errors[0]
    assert Session.objects.filter(connection=connection).count() == 6
    # The next pass runs normally and says the same.
    again = _full_pass(connection)
    _assert_healthy(connection)
    assert len(again.errors) == 1
    assert again.sessions_created == again.sessions_updated == 0


def test_it_stores_lone_surrogates_in_any_text_as_replacement_characters(world):
    sim, connection = world
    _inject(
        sim,
        "1000000000000000001",
        changes={
            "prompt": "Fix \ud800 this",
            "title": "Title \udfff",
            "sourceContext": {"source": "sources/github/acme/\ud800"},
            "outputs": [{"pullRequest": {"url": "https://x.test/pull/1", "title": "PR \ud800"}}],
            "someNewField": {"\ud800key": ["\udc00"]},
        },
        activities=[
            {"agentMessaged": {"agentMessage": "Hi \ud800"}},
            {"description": "\udbff\udfff fine, and \udbff alone"},
        ],
    )
    report = _full_pass(connection)
    assert report.errors == []
    _assert_healthy(connection)
    odd = Session.objects.get(remote_id="1000000000000000001")
    assert odd.prompt == "Fix \ufffd this"
    assert odd.title == "Title \ufffd"
    assert odd.raw["someNewField"] == {"\ufffdkey": ["\ufffd"]}
    assert odd.outputs.get().title == "PR \ufffd"
    messages = sorted(Activity.objects.filter(session=odd).values_list("message", "description"))
    assert ("Hi \ufffd", "") in messages
    assert ("", "\U0010ffff fine, and \ufffd alone") in messages
    again = _full_pass(connection)
    assert again.errors == [] and again.sessions_updated == again.activities_created == 0


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Kiritimati", "Etc/GMT+12"])
def test_it_stores_times_at_the_calendars_edges_in_any_time_zone(world, settings, zone):
    settings.TIME_ZONE = zone
    sim, connection = world
    _inject(
        sim,
        "1000000000000000002",
        changes={"createTime": "0001-01-01T00:00:00Z", "updateTime": "9999-12-31T23:59:59.999999Z"},
        activities=[
            {"createTime": "0001-01-01T00:00:00Z"},
            {"createTime": "9999-12-31T23:59:59.999999Z"},
            {"createTime": "9999-12-31T23:59:59+14:00"},
        ],
    )
    report = _full_pass(connection)
    assert report.errors == []
    _assert_healthy(connection)
    odd = Session.objects.get(remote_id="1000000000000000002")
    # Unknown times, the service's text kept.
    assert odd.create_time is None and odd.update_time is None
    assert odd.raw["createTime"] == "0001-01-01T00:00:00Z"
    stored = Activity.objects.filter(session=odd)
    assert stored.count() == 3
    assert set(stored.values_list("create_time", flat=True)) == {None}
    assert "0001-01-01T00:00:00Z" in set(stored.values_list("create_time_raw", flat=True))
    # Re-read on its own cadence too, without an error.
    Session.objects.filter(pk=odd.pk).update(next_poll_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    again = _full_pass(connection)
    assert again.errors == []
    _assert_healthy(connection)
    assert Activity.objects.filter(session=odd).count() == 3


def test_it_fits_long_names_and_unknown_values_into_their_columns(world):
    sim, connection = world
    _inject(
        sim,
        "1000000000000000003",
        changes={
            "name": "sessions/" + "n" * 200,
            "title": "t" * 900,
            "state": "SOMETHING_NEW_" + "X" * 80,
            "automationMode": "A_MODE_FROM_THE_FUTURE_" + "M" * 40,
            "url": "https://jules.google.com/session/" + "u" * 400,
            "sourceContext": {
                "source": "sources/github/acme/" + "r" * 400,
                "githubRepoContext": {"startingBranch": "b" * 300},
            },
            "outputs": [
                {
                    "pullRequest": {
                        "url": "https://github.com/acme/x/pull/" + "9" * 600,
                        "title": "p" * 600,
                        "headRef": "h" * 300,
                    }
                },
                {"somethingElse": {"x": 1}},
            ],
        },
        activities=[
            {"name": "sessions/x/activities/" + "a" * 300, "originator": "o" * 50},
            {"someNewActivityKindWithAVeryLongName": {"x": 1}, "progressUpdated": None},
            {"id": "f" * 65},
            {"id": "bad/id"},
        ],
    )
    account = sim.state.account(KEY)
    long_source = {"name": "sources/github/acme/" + "s" * 400, "id": "github/acme/" + "s" * 400}
    account.sources[long_source["name"]] = long_source
    account.source_bytes[long_source["name"]] = json.dumps(long_source).encode()
    report = _full_pass(connection)
    _assert_healthy(connection)
    # The two activities whose ids the portal cannot key, and the source whose name does
    # not fit, are named and skipped.
    activity_errors = [e for e in report.errors if "activity" in e]
    assert len(activity_errors) == 2 and len(report.errors) == 3
    assert all("1000000000000000003" in e for e in activity_errors)
    assert any("'bad/id'" in e for e in activity_errors)
    assert any(e.startswith("source 'sources/github/acme/sss") for e in report.errors)
    assert Source.objects.filter(connection=connection).count() == 8
    odd = Session.objects.get(remote_id="1000000000000000003")
    assert odd.state == "STATE_UNSPECIFIED"
    assert odd.state_raw.startswith("SOMETHING_NEW_")
    assert len(odd.title) == 500 and len(odd.name) <= 80
    assert odd.outputs.count() == 2
    assert Activity.objects.filter(session=odd).count() == 2
    again = _full_pass(connection)
    _assert_healthy(connection)
    assert again.sessions_updated == again.activities_created == 0


def test_one_empty_sources_answer_keeps_the_teams_repositories(world):
    sim, connection = world
    sync.sync_connection(connection.pk, full=True)
    assert Source.objects.filter(connection=connection).count() == 8
    sim.add_fault("kind=empty,path=^/sources$,first=1")
    report = _full_pass(connection)
    assert report.errors == []
    assert Source.objects.filter(connection=connection).count() == 8
    # Gone for good (two listings agree): removed.
    sim.add_fault("kind=empty,path=^/sources$")
    _full_pass(connection)
    assert Source.objects.filter(connection=connection).count() == 0


def test_a_reused_id_is_a_new_session_and_the_old_row_keeps_its_history(cast, settings):
    """A simulator restarted with the same seed and a fresh world hands out the same ids
    with other prompts or create times."""
    first = start_simulator(api_keys=[KEY], manual_clock=True, seed=41)
    connection = ConnectionFactory(team=cast.team, base_url=first.base_url, api_key=KEY)
    try:
        client = JulesClient(KEY, first.base_url)
        old = [
            sync.upsert_remote_session(
                connection,
                client.create_session(prompt=f"Old task {n} [sim:failure step=1]"),
                launched_by=cast.member,
            )
            for n in (1, 2)
        ]
        first.advance(600)
        sync.sync_connection(connection.pk, full=True)
        history = {s.remote_id: Activity.objects.filter(session=s).count() for s in old}
        assert all(history.values())
    finally:
        first.stop()

    second = start_simulator(api_keys=[KEY], manual_clock=True, seed=41)
    try:
        JulesConnection.objects.filter(pk=connection.pk).update(base_url=second.base_url)
        client = JulesClient(KEY, second.base_url)
        # The same id with another prompt, then the same id and prompt at another time.
        new_1 = client.create_session(prompt="New task 1")
        second.advance(3600)
        new_2 = client.create_session(prompt="Old task 2 [sim:failure step=1]")
        assert [new_1.id, new_2.id] == [s.remote_id for s in old]
        launched = sync.upsert_remote_session(connection, new_1, launched_by=cast.admin)
        report = _full_pass(connection)
        assert report.errors == []
    finally:
        second.stop()

    for before, new_id in zip(old, (new_1.id, new_2.id), strict=True):
        kept = Session.objects.get(pk=before.pk)
        assert kept.remote_id.startswith(f"{new_id}~superseded-")
        assert kept.deleted_remotely is True
        assert kept.launched_by == cast.member
        assert kept.prompt == before.prompt
        assert Activity.objects.filter(session=kept).count() == history[new_id]
        note = SessionTransition.objects.get(session=kept, kind="deleted")
        assert note.details["reason"] == "superseded"
        assert note.details["remote_id"] == new_id
        assert AuditEntry.objects.filter(action="sync.deleted", target_id=str(kept.pk)).exists()
        fresh = Session.objects.get(connection=connection, remote_id=new_id)
        assert fresh.pk != kept.pk and fresh.deleted_remotely is False
        assert not Activity.objects.filter(session=fresh, pk__in=kept.activities.all()).exists()
    assert Session.objects.get(remote_id=new_1.id).launched_by == cast.admin
    assert launched.prompt == "New task 1"
    assert Session.objects.get(remote_id=new_2.id).launched_by is None
    assert Session.objects.filter(connection=connection).count() == 4


def test_a_tombstone_id_fits_the_column_and_never_looks_like_an_id():
    from sessions_app.sync.mapping import SESSION_ID, tombstone_id

    longest = "9" * 40
    assert tombstone_id("123", 1) == "123~superseded-1"
    assert len(tombstone_id(longest, 12)) == 40
    assert tombstone_id(longest, 12).endswith("~superseded-12")
    assert not SESSION_ID.fullmatch(tombstone_id("123", 1))
