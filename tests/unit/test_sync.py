"""The sync engine against the simulator over real HTTP on loopback."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext

from jules.client import JulesClient
from sessions_app import sync, tasks
from sessions_app.connections.client import sync_client
from sessions_app.models import (
    Activity,
    AuditEntry,
    JulesConnection,
    Session,
    SessionOutput,
    SessionTransition,
    Source,
)
from sessions_app.models.jules import SyncStatus
from tests.factories import ConnectionFactory, UserFactory

pytestmark = pytest.mark.django_db


def _remote_totals(simulator, key="test-key"):
    account = simulator.state.account(key)
    sessions = list(account.sessions.values())
    return len(sessions), sum(len(s.activities) for s in sessions)


@pytest.fixture
def seeded(cast):
    from jules_simulator import start_simulator

    sim = start_simulator(
        api_keys=["test-key"],
        manual_clock=True,
        seed=11,
        seed_sessions=120,
        activities_per_session=6,
    )
    connection = ConnectionFactory(team=cast.team, base_url=sim.base_url, api_key="test-key")
    yield sim, connection
    sim.stop()


def test_it_syncs_a_seeded_account_completely(seeded):
    sim, connection = seeded
    report = sync.sync_connection(connection.pk, full=True)
    assert report.errors == []
    sessions, activities = _remote_totals(sim)
    assert Session.objects.filter(connection=connection).count() == sessions == 120
    assert Activity.objects.filter(session__connection=connection).count() == activities
    assert Source.objects.filter(connection=connection).count() == 8
    assert Session.objects.filter(archived=True).exists()
    assert SessionOutput.objects.filter(kind="pullRequest").exists()
    connection.refresh_from_db()
    assert connection.sync_status == SyncStatus.OK
    assert connection.last_success_at is not None
    assert connection.sync_claim_token == ""


def test_it_writes_nothing_on_a_second_sync(seeded):
    _sim, connection = seeded
    sync.sync_connection(connection.pk, full=True)
    JulesConnection.objects.filter(pk=connection.pk).update(last_full_sync_at=None)
    with CaptureQueriesContext(db_connection) as queries:
        report = sync.sync_connection(connection.pk, full=True)
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith(("INSERT", "UPDATE", "DELETE"))
        and "sessions_app_julesconnection" not in q["sql"]
    ]
    assert report.sessions_created == report.sessions_updated == report.activities_created == 0
    assert writes == []


def test_it_follows_a_session_through_its_life_and_records_transitions(
    simulator, sim_connection, cast
):
    client = JulesClient("test-key", simulator.base_url)
    remote = client.create_session(
        prompt="Add tests [sim:question]",
        source="sources/github/acme/billing",
        starting_branch="main",
        require_plan_approval=True,
        automation_mode="AUTO_CREATE_PR",
    )
    launched = sync.upsert_remote_session(sim_connection, remote, launched_by=cast.member)
    assert launched.launched_by == cast.member
    simulator.advance(70)
    sync.sync_one_session(launched.pk)
    launched.refresh_from_db()
    assert launched.state == "AWAITING_PLAN_APPROVAL"
    assert launched.activities.filter(kind="planGenerated").count() == 1
    plan = launched.activities.get(kind="planGenerated")
    assert len(plan.plan_steps) >= 3
    client.approve_plan(remote.id)
    simulator.advance(60)
    sync.sync_one_session(launched.pk)
    client.send_message(remote.id, "Toward zero, please.")
    simulator.advance(900)
    sync.sync_one_session(launched.pk)
    launched.refresh_from_db()
    assert launched.state == "COMPLETED"
    assert launched.pr_url.startswith("https://github.com/acme/billing/pull/")
    kinds = set(launched.transitions.values_list("kind", flat=True))
    assert {"discovered", "state_changed", "plan_generated", "plan_approved", "pr_opened"} <= kinds
    assert (
        AuditEntry.objects.filter(action="sync.pr_opened", target_id=str(launched.pk)).count() == 1
    )
    completed = launched.activities.get(kind="sessionCompleted")
    assert completed.artifacts[0]["kind"] == "changeSet"
    assert completed.artifacts[0]["patch"].startswith("diff --git")
    # Running it again adds nothing: activities are keyed by their remote id.
    before = launched.activities.count()
    sync.sync_one_session(launched.pk)
    assert launched.activities.count() == before


def test_it_skips_a_connection_another_worker_holds(seeded):
    _, connection = seeded
    assert sync.claim(connection.pk) is not None
    report = sync.sync_connection(connection.pk)
    assert report.skipped is True
    assert Session.objects.count() == 0


def test_it_marks_a_rejected_key_broken_and_stops_scheduling_it(simulator, cast):
    connection = ConnectionFactory(
        team=cast.team, base_url=simulator.base_url, api_key="sk-unknown-9f8e7d"
    )
    report = sync.sync_connection(connection.pk)
    connection.refresh_from_db()
    assert connection.sync_status == SyncStatus.BROKEN
    assert "rejected this connection's API key" in connection.last_error
    assert "sk-unknown-9f8e7d" not in connection.last_error
    assert report.errors
    assert connection.pk not in sync.due_connections()


def test_it_survives_a_429_storm_and_5xx_with_the_same_result(seeded, settings):
    sim, connection = seeded
    settings.JULES_RETRY_BUDGET = 30
    sim.add_fault("kind=status,status=429,retry_after=0,every=4")
    sim.add_fault("kind=status,status=503,every=7")
    sim.add_fault("kind=malformed,path=/activities$,every=9")
    # The faults count requests across the sync's concurrent reads, so about half of one
    # request's attempts can land on a fault: the default of 8 retries is exhausted by one
    # request in a few hundred, which this test is not about (one exhausted request is
    # `test_it_keeps_going_when_one_session_keeps_failing`). The same holds for the two
    # repeats a read gets for an unreadable body: three in one read happen in some runs.
    client = JulesClient(
        "test-key",
        sim.base_url,
        backoff_base=0.001,
        backoff_cap=0.01,
        max_retries=40,
        malformed_retries=40,
    )
    report = sync.sync_connection(connection.pk, full=True, client=client)
    assert report.errors == []
    sessions, activities = _remote_totals(sim)
    assert Session.objects.count() == sessions
    assert Activity.objects.count() == activities
    assert sim.request_counts().get("fault.status", 0) > 0


def test_it_keeps_going_when_one_session_keeps_failing(seeded, settings):
    sim, connection = seeded
    sync.sync_connection(connection.pk, full=True)
    victim = Session.objects.order_by("-create_time").first()
    sim.add_fault(f"kind=status,status=500,path=/sessions/{victim.remote_id}/activities")
    Session.objects.update(last_activity_at=None, activity_count=0)
    Activity.objects.all().delete()
    JulesConnection.objects.filter(pk=connection.pk).update(last_full_sync_at=None)
    Session.objects.update(raw={})
    client = JulesClient("test-key", sim.base_url, retry_budget=0.5, backoff_base=0.01)
    report = sync.sync_connection(connection.pk, full=True, client=client)
    assert len(report.errors) == 1 and victim.remote_id in report.errors[0]
    assert Activity.objects.exclude(session=victim).count() > 0
    assert not Activity.objects.filter(session=victim).exists()


def test_it_marks_sessions_deleted_on_jules(seeded):
    sim, connection = seeded
    sync.sync_connection(connection.pk, full=True)
    client = JulesClient("test-key", sim.base_url)
    gone = Session.objects.first()
    client.delete_session(gone.remote_id)
    JulesConnection.objects.filter(pk=connection.pk).update(last_full_sync_at=None)
    sync.sync_connection(connection.pk, full=True)
    gone.refresh_from_db()
    assert gone.deleted_remotely is True
    assert SessionTransition.objects.filter(session=gone, kind="deleted").count() == 1


def test_it_finds_new_sessions_without_a_full_pass(seeded, settings):
    sim, connection = seeded
    sync.sync_connection(connection.pk, full=True)
    client = JulesClient("test-key", sim.base_url)
    remote = client.create_session(prompt="A new task")
    JulesConnection.objects.filter(pk=connection.pk).update(last_list_at=None)
    report = sync.sync_connection(connection.pk)
    assert report.sessions_created == 1
    assert Session.objects.filter(remote_id=remote.id).exists()
    assert report.sessions_seen <= 200


def test_it_runs_from_the_command_line_with_a_summary(seeded, capsys):
    _, connection = seeded
    call_command("jules_sync", "--connection", str(connection.pk), "--full")
    out = capsys.readouterr().out
    assert "sessions seen 120" in out
    assert Session.objects.count() == 120


def test_it_schedules_due_connections_once(seeded):
    _, connection = seeded
    UserFactory()
    assert tasks.schedule_syncs() == [connection.pk]
    # The eager task ran the pass, so the connection is no longer due.
    assert tasks.schedule_syncs() == []
    assert Session.objects.count() == 120


def test_it_never_deletes_history_on_an_empty_listing(seeded):
    sim, connection = seeded
    sync.sync_connection(connection.pk, full=True)
    sim.add_fault("kind=empty,path=^/sessions$,first=1")
    JulesConnection.objects.filter(pk=connection.pk).update(last_full_sync_at=None)
    report = sync.sync_connection(connection.pk, full=True)
    assert report.sessions_deleted == 0
    assert not Session.objects.filter(deleted_remotely=True).exists()


@pytest.mark.parametrize("threaded", [False, True])
def test_the_writer_runs_writes_in_order_and_returns_results(threaded):
    from sessions_app.sync.pipeline import Writer

    done: list[int] = []
    with Writer(threaded=threaded, depth=1) as writer:
        for n in range(5):
            writer.submit(done.append, n)
        future = writer.call(lambda: list(done))
        assert future.result(timeout=10) == [0, 1, 2, 3, 4]
    assert done == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("threaded", [False, True])
def test_the_writer_stops_at_the_first_failed_write_and_raises_it(threaded):
    from sessions_app.sync.pipeline import Writer

    done: list[str] = []

    def fail() -> None:
        raise ValueError("the database said no")

    writer = Writer(threaded=threaded)
    with pytest.raises(ValueError, match="the database said no"):
        try:
            writer.submit(done.append, "first")
            writer.submit(fail)
            # Raised here if the writer has already failed, else by close().
            writer.submit(done.append, "after the failure")
        finally:
            writer.close()
    assert done == ["first"]
    # A call's own failure goes to its future, not to the writer.
    with Writer(threaded=threaded) as other:
        assert isinstance(other.call(fail).exception(timeout=10), ValueError)
        other.submit(done.append, "still writing")
    assert done[-1] == "still writing"


def test_the_writer_keeps_the_callers_exception_and_finishes_queued_writes():
    from sessions_app.sync.pipeline import Writer

    done: list[int] = []
    with pytest.raises(KeyError), Writer(threaded=True) as writer:
        writer.submit(done.append, 1)
        raise KeyError("the caller failed")
    assert done == [1]


def test_two_writer_threads_run_two_writes_at_once_and_start_only_when_needed():
    import threading

    from sessions_app.sync.pipeline import Writer

    def writers() -> set[str]:
        return {t.name for t in threading.enumerate() if t.name.startswith("jules-sync-writer")}

    # One write at a time needs one thread, so a pass with one write opens one connection.
    with Writer(threaded=True, threads=2) as writer:
        assert writer.threads == 2
        assert writer.call(writers).result(timeout=10) == {"jules-sync-writer-0"}
    # Two writes that each wait for the other finish only if both run at once.
    both = threading.Barrier(2, timeout=10)
    with Writer(threaded=True, threads=2) as writer:
        first, second = writer.call(both.wait), writer.call(both.wait)
        assert {first.result(timeout=15), second.result(timeout=15)} == {0, 1}
    with Writer(threaded=True, threads=1) as writer:
        alone = threading.Barrier(2, timeout=0.5)
        waits = [writer.call(alone.wait), writer.call(alone.wait)]
        assert isinstance(waits[0].exception(timeout=10), threading.BrokenBarrierError)


def test_each_write_counts_into_its_own_report_and_the_writer_adds_them_up():
    from sessions_app.sync.pipeline import Writer
    from sessions_app.sync.writers import SyncReport

    def write(created: int, report: SyncReport) -> None:
        report.sessions_created += created
        report.errors.append(f"write of {created}")

    total = SyncReport(sessions_created=1)
    with Writer(threaded=True, threads=2) as writer:
        for n in range(1, 21):
            writer.submit(write, n, writer.new_report())
    writer.merge_into(total)
    assert total.sessions_created == 1 + sum(range(1, 21))
    assert sorted(total.errors) == sorted(f"write of {n}" for n in range(1, 21))
    # Merged once: a second merge adds nothing.
    writer.merge_into(total)
    assert total.sessions_created == 211


def test_with_two_threads_the_first_failure_is_raised_and_later_writes_are_dropped():
    import threading
    import time

    from sessions_app.sync.pipeline import Writer

    done: list[str] = []
    release = threading.Event()
    writer = Writer(threaded=True, threads=2, depth=8)

    def fail() -> None:
        release.wait(10)
        raise ValueError("the database said no")

    def beside() -> None:
        # Runs beside the failing write and ends only once the failure is recorded.
        release.wait(10)
        deadline = time.monotonic() + 10
        while writer._error is None and time.monotonic() < deadline:
            time.sleep(0.01)
        done.append("beside")

    with pytest.raises(ValueError, match="the database said no"):
        try:
            writer.submit(fail)
            writer.submit(beside)
            for n in range(3):
                writer.submit(done.append, f"queued {n}")
            release.set()
        finally:
            writer.close()
    # The writes still queued when the first one failed were drained, not run.
    assert done == ["beside"]


def test_the_writer_thread_leaves_the_switch_interval_alone():
    import sys

    from sessions_app.sync.pipeline import Writer

    before = sys.getswitchinterval()
    with Writer(threaded=True), Writer(threaded=True):
        assert sys.getswitchinterval() == before
    assert sys.getswitchinterval() == before


def test_the_worker_sets_its_switch_interval_when_it_starts():
    import sys

    from julesweb import celery

    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)
        celery.apply_worker_settings()
        assert sys.getswitchinterval() == celery.WORKER_SWITCH_INTERVAL
    finally:
        sys.setswitchinterval(before)


def test_the_sync_client_reads_proxy_settings_once_and_still_honours_them(
    monkeypatch, cast, settings
):
    settings.JULES_ALLOWED_BASE_URLS = ["https://jules.example/v1alpha"]
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "company-ca.pem")
    connection = ConnectionFactory(team=cast.team, base_url="https://jules.example/v1alpha")
    client = sync_client(connection)
    http = client._http
    # Read once when the client is made, not again on every request...
    assert http.trust_env is False
    # ...but still what the environment says.
    assert http.proxies["https"] == "http://proxy.internal:3128"
    assert http.verify == "company-ca.pem"
    # A host that NO_PROXY covers goes direct, as requests would decide per request.
    monkeypatch.setenv("NO_PROXY", "jules.example")
    direct = sync_client(connection)._http
    assert "https" not in direct.proxies
    # Other callers keep requests' per-request behaviour.
    assert JulesClient("k", "https://jules.example")._http.trust_env is True


def test_the_sync_clients_fast_gets_send_what_requests_would_send(monkeypatch, cast, settings):
    settings.JULES_ALLOWED_BASE_URLS = ["https://jules.example/v1alpha"]
    import requests

    sent: dict[str, list[requests.PreparedRequest]] = {"fast": [], "plain": []}

    def capture(label, client):
        def send(request, **kwargs):
            sent[label].append(request)
            assert kwargs["allow_redirects"] is False
            response = requests.Response()
            response.status_code = 200
            response._content = b'{"activities": [], "nextPageToken": "n\\u00e9xt+1/2"}'
            return response

        monkeypatch.setattr(client._http, "send", send)

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    connection = ConnectionFactory(team=cast.team, base_url="https://jules.example/v1alpha")
    fast = sync_client(connection)
    plain = JulesClient("test-key", "https://jules.example/v1alpha")
    capture("fast", fast)
    capture("plain", plain)
    assert fast._get_headers is not None and plain._get_headers is None

    def not_on_the_fast_path(*args, **kwargs):
        raise AssertionError("a sync GET went through requests' per-call preparation")

    monkeypatch.setattr(fast._http, "prepare_request", not_on_the_fast_path)
    for client in (fast, plain):
        client.list_activities(
            "s 1~x%",
            page_size=100,
            page_token="tok+en/=é",
            create_time_after="2026-01-01T00:00:00.123Z",
        )
        client.list_sessions(page_size=10, archived=None)
    for mine, theirs in zip(sent["fast"], sent["plain"], strict=True):
        assert mine.method == theirs.method == "GET"
        assert mine.url == theirs.url
        assert dict(mine.headers) == dict(theirs.headers)
        assert mine.headers["X-Goog-Api-Key"] == "test-key"
        assert mine.body is None
    assert len(sent["fast"]) == 2
    # A base URL that requests would rewrite (here its host's case) takes the usual path.
    odd = ConnectionFactory(team=cast.team, base_url="https://Jules.Example/v1alpha")
    assert sync_client(odd)._get_headers is None
