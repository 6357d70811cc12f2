"""The sync and the outbox with a real Celery worker process, PostgreSQL and Redis."""

from __future__ import annotations

import signal

import pytest

from jules_simulator import start_simulator
from sessions_app import sync, tasks
from sessions_app.models import Activity, JulesConnection, OutboxAction, Session, SessionOutput
from tests.factories import ConnectionFactory, MembershipFactory, TeamFactory, UserFactory
from tests.integration.conftest import wait_for

SESSIONS = 2000
SMALL = 400
ACTIVITIES = 5


@pytest.fixture
def seeded_sim(request):
    # The complete-sync test uses a few thousand sessions; the drills use fewer, so the
    # whole group stays within a few minutes on CI.
    count = getattr(request, "param", SMALL)
    sim = start_simulator(
        host="127.0.0.1",
        api_keys=["int-key"],
        manual_clock=True,
        seed=5,
        seed_sessions=count,
        activities_per_session=ACTIVITIES,
    )
    yield sim
    sim.stop()


def _remote(sim):
    account = sim.state.account("int-key")
    return len(account.sessions), sum(len(s.activities) for s in account.sessions.values())


def _snapshot():
    return (
        Session.objects.count(),
        Activity.objects.count(),
        SessionOutput.objects.count(),
        sorted(Session.objects.values_list("remote_id", "state", "archived")),
    )


def _connection(sim):
    team = TeamFactory(slug="int")
    return ConnectionFactory(team=team, base_url=sim.base_url, api_key="int-key")


@pytest.mark.parametrize("seeded_sim", [SESSIONS], indirect=True)
def test_it_syncs_a_large_account_with_a_worker_and_writes_nothing_twice(workers, seeded_sim):
    connection = _connection(seeded_sim)
    workers.start("w1")
    tasks.sync_connection.delay(connection.pk, full=True)
    wait_for(
        lambda: JulesConnection.objects.filter(
            pk=connection.pk, last_full_sync_at__isnull=False
        ).exists(),
        timeout=240,
    )
    sessions, activities = _remote(seeded_sim)
    assert Session.objects.count() == sessions == SESSIONS
    assert Activity.objects.count() == activities
    before = _snapshot()
    stamp = Session.objects.order_by("-synced_at").values_list("synced_at", flat=True).first()
    JulesConnection.objects.filter(pk=connection.pk).update(last_full_sync_at=None)
    tasks.sync_connection.delay(connection.pk, full=True)
    wait_for(
        lambda: JulesConnection.objects.filter(
            pk=connection.pk, last_full_sync_at__isnull=False
        ).exists(),
        timeout=240,
    )
    assert _snapshot() == before
    assert (
        Session.objects.order_by("-synced_at").values_list("synced_at", flat=True).first() == stamp
    )


def test_it_creates_no_duplicates_with_two_workers_racing(workers, seeded_sim):
    connection = _connection(seeded_sim)
    workers.start("w1")
    workers.start("w2")
    for _ in range(4):
        tasks.sync_connection.delay(connection.pk, full=True)
    wait_for(
        lambda: JulesConnection.objects.filter(
            pk=connection.pk, last_full_sync_at__isnull=False
        ).exists(),
        240,
    )
    # Claims make the extra tasks skip; the unique keys would refuse duplicates anyway.
    wait_for(
        lambda: (
            not JulesConnection.objects.filter(
                pk=connection.pk, sync_claimed_until__isnull=False
            ).exists()
        ),
        240,
    )
    assert Session.objects.count() == SMALL
    assert Activity.objects.count() == _remote(seeded_sim)[1]


def test_it_ends_with_the_same_database_under_faults(workers, seeded_sim):
    connection = _connection(seeded_sim)
    for spec in (
        "kind=status,status=429,every=20",
        "kind=status,status=429,retry_after=1,every=37",
        "kind=status,status=503,every=29",
        "kind=status,status=500,every=41",
        "kind=status,status=502,every=43",
        "kind=malformed,every=47",
        "kind=truncate,every=53",
        "kind=reset,every=59",
        "kind=latency,seconds=0.2,every=31",
    ):
        seeded_sim.add_fault(spec)
    workers.extra_env = {"JULES_RETRY_BUDGET": "120"}
    workers.start("w1")
    tasks.sync_connection.delay(connection.pk, full=True)
    wait_for(
        lambda: JulesConnection.objects.filter(
            pk=connection.pk, last_full_sync_at__isnull=False
        ).exists(),
        300,
    )
    account = seeded_sim.state.account("int-key")
    remote_activities = {a["id"] for s in account.sessions.values() for a in s.activities}
    assert set(Session.objects.values_list("remote_id", flat=True)) == set(account.sessions)
    assert set(Activity.objects.values_list("remote_id", flat=True)) == remote_activities
    assert Activity.objects.count() == len(remote_activities)
    assert seeded_sim.request_counts().get("fault.status", 0) > 5


def test_it_converges_after_a_worker_is_killed_mid_sync(workers, seeded_sim):
    connection = _connection(seeded_sim)
    first = workers.start("w1")
    tasks.sync_connection.delay(connection.pk, full=True)
    wait_for(lambda: Session.objects.count() > 200, 120)
    workers.kill(first, signal.SIGKILL)
    # The claim of the dead worker expires; make it expire now rather than in ten minutes.
    JulesConnection.objects.filter(pk=connection.pk).update(sync_claimed_until=None)
    workers.start("w2")
    tasks.sync_connection.delay(connection.pk, full=True)
    wait_for(
        lambda: JulesConnection.objects.filter(
            pk=connection.pk, last_full_sync_at__isnull=False
        ).exists(),
        240,
    )
    assert Session.objects.count() == SMALL
    assert Activity.objects.count() == _remote(seeded_sim)[1]


def test_it_delivers_actions_on_the_actions_queue_once(workers, seeded_sim):
    connection = _connection(seeded_sim)
    user = UserFactory(username="approver-int")
    MembershipFactory(team=connection.team, user=user, role="admin")
    workers.start("actions", queues="actions")
    from sessions_app.sessions import services

    action = services.session_launch(
        user=user,
        connection=connection,
        prompt="Integration launch",
        source_name="sources/github/acme/api",
        starting_branch="main",
    )
    wait_for(lambda: OutboxAction.objects.filter(pk=action.pk, status="done").exists(), 60)
    assert seeded_sim.request_counts()["sessions.create"] == 1
    action.refresh_from_db()
    assert Session.objects.get(pk=action.session_id).launched_by == user


def test_it_syncs_a_session_change_within_one_cadence(workers, seeded_sim):
    connection = _connection(seeded_sim)
    workers.start("w1")
    sync.sync_connection(connection.pk, full=True)
    from jules.client import JulesClient

    remote = JulesClient("int-key", seeded_sim.base_url).create_session(prompt="Watch me move")
    JulesConnection.objects.filter(pk=connection.pk).update(
        last_list_at=None, last_sync_started_at=None
    )
    tasks.schedule_syncs()
    wait_for(lambda: Session.objects.filter(remote_id=remote.id).exists(), 60)
    # The row is written before the pass ends; a pass still holding its claim is not due.
    wait_for(
        lambda: JulesConnection.objects.filter(
            pk=connection.pk, sync_claimed_until__isnull=True
        ).exists(),
        60,
    )
    seeded_sim.advance(70)
    Session.objects.filter(remote_id=remote.id).update(next_poll_at=None)
    from django.utils import timezone

    Session.objects.filter(remote_id=remote.id).update(next_poll_at=timezone.now())
    JulesConnection.objects.filter(pk=connection.pk).update(last_sync_started_at=None)
    tasks.schedule_syncs()
    wait_for(
        lambda: Session.objects.filter(remote_id=remote.id).exclude(state="QUEUED").exists(), 60
    )
    assert Session.objects.get(remote_id=remote.id).state in {"PLANNING", "IN_PROGRESS"}


def _bookkeeping_mismatches(connection):
    """Sessions whose activity count, newest activity or read mark disagree with the rows."""
    from django.db.models import Count, Max

    wrong = []
    for session in Session.objects.filter(connection=connection).annotate(
        n=Count("activities"), newest=Max("activities__create_time")
    ):
        if (
            session.activity_count != session.n
            or session.last_activity_at != session.newest
            or session.activities_read_for != session.update_time
        ):
            wrong.append(session.remote_id)
    return wrong


def test_the_threaded_bulk_path_keeps_every_count_and_mark_true(transactional_db, seeded_sim):
    from sessions_app.models import SessionTransition
    from sessions_app.sync.store import store_for

    # Outside a transaction on PostgreSQL: the writes run on the writer thread.
    assert store_for().can_thread()
    connection = _connection(seeded_sim)
    report = sync.sync_connection(connection.pk, full=True)
    sessions, activities = _remote(seeded_sim)
    assert report.errors == []
    assert (report.sessions_created, report.activities_created) == (sessions, activities)
    assert Session.objects.count() == sessions
    assert Activity.objects.count() == activities
    assert _bookkeeping_mismatches(connection) == []
    assert SessionTransition.objects.filter(kind="discovered").count() == sessions
    assert report.transitions == sessions
    JulesConnection.objects.filter(pk=connection.pk).update(last_full_sync_at=None)
    again = sync.sync_connection(connection.pk, full=True)
    assert (again.sessions_created, again.sessions_updated, again.activities_created) == (0, 0, 0)
    assert again.transitions == 0


def test_the_threaded_bulk_path_follows_a_session_and_records_transitions(transactional_db):
    from jules.client import JulesClient
    from sessions_app.models import AuditEntry, SessionTransition

    sim = start_simulator(host="127.0.0.1", api_keys=["int-key"], manual_clock=True, seed=3)
    try:
        connection = _connection(sim)
        client = JulesClient("int-key", sim.base_url)
        remote = client.create_session(
            prompt="Add tests [sim:question]",
            source="sources/github/acme/billing",
            starting_branch="main",
            require_plan_approval=True,
            automation_mode="AUTO_CREATE_PR",
        )

        def listing_pass():
            JulesConnection.objects.filter(pk=connection.pk).update(last_list_at=None)
            report = sync.sync_connection(connection.pk)
            assert report.errors == []
            return report

        listing_pass()
        sim.advance(70)
        listing_pass()
        session = Session.objects.get(remote_id=remote.id)
        assert session.state == "AWAITING_PLAN_APPROVAL"
        client.approve_plan(remote.id)
        sim.advance(60)
        listing_pass()
        client.send_message(remote.id, "Toward zero, please.")
        sim.advance(900)
        listing_pass()
        session.refresh_from_db()
        assert session.state == "COMPLETED"
        remote_activities = sim.state.account("int-key").sessions[remote.id].activities
        assert session.activities.count() == len(remote_activities)
        assert _bookkeeping_mismatches(connection) == []
        kinds = list(session.transitions.values_list("kind", flat=True))
        assert kinds.count("discovered") == 1
        assert kinds.count("plan_generated") == 1
        assert kinds.count("plan_approved") == 1
        assert {"state_changed", "pr_opened"} <= set(kinds)
        assert AuditEntry.objects.filter(
            action="sync.plan_generated", target_id=str(session.pk)
        ).exists()
        before = (session.activities.count(), SessionTransition.objects.count())
        listing_pass()
        assert (session.activities.count(), SessionTransition.objects.count()) == before
    finally:
        sim.stop()
