"""Outbox delivery against the simulator: done, retried with backoff, failed, swept, once."""

from __future__ import annotations

import datetime as dt
import time
from unittest import mock

import pytest
import requests
from django.urls import reverse
from django.utils import timezone

from jules.client import JulesClient
from sessions_app import sync
from sessions_app.models import OutboxAction, Session
from sessions_app.outbox import delivery as actions
from sessions_app.sessions import services

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _simulated_clock_at_now(simulator):
    # The simulator's manual clock starts at a fixed date; matching an ambiguous launch or
    # message compares Jules' times with the portal's, so the two clocks must agree here.
    now = requests.post(f"{simulator.admin_url}/clock/advance", json={"seconds": 0}, timeout=5)
    simulator.advance(max(0.0, time.time() - now.json()["now"]))


@pytest.fixture
def fast_failures(settings):
    # No retries inside the client: each delivery makes one request, so the outbox's own
    # backoff is what the tests see.
    settings.JULES_RETRY_BUDGET = 0
    settings.JULES_READ_TIMEOUT = 0.5


def _remote_session(simulator, sim_connection, *, prompt="Fix it", advance=70):
    remote = JulesClient("test-key", simulator.base_url).create_session(
        prompt=prompt,
        source="sources/github/acme/billing",
        starting_branch="main",
        require_plan_approval=True,
    )
    simulator.advance(advance)
    session = sync.upsert_remote_session(sim_connection, remote)
    sync.sync_one_session(session.pk)
    session.refresh_from_db()
    return session


def _reload(action):
    return OutboxAction.objects.get(pk=action.pk)


def _make_due(action):
    OutboxAction.objects.filter(pk=action.pk).update(
        next_attempt_at=timezone.now() - dt.timedelta(seconds=1)
    )


def _wait_for(simulator, operation, count, timeout=5.0):
    deadline = time.monotonic() + timeout
    while simulator.request_counts().get(operation, 0) < count:
        assert time.monotonic() < deadline, f"{operation} never reached {count}"
        time.sleep(0.05)


def test_it_delivers_a_launch_and_links_the_new_session(cast, simulator, sim_connection):
    action = services.session_launch(
        user=cast.member,
        connection=sim_connection,
        prompt="Add rounding tests",
        source_name="sources/github/acme/billing",
        starting_branch="main",
    )
    assert actions.deliver(str(action.pk)) == "done"
    action = _reload(action)
    assert action.status == "done" and action.attempts == 1 and action.delivered_at
    session = Session.objects.get(pk=action.session_id)
    assert session.launched_by == cast.member and session.prompt == "Add rounding tests"
    assert action.result == {"remote_id": session.remote_id}
    assert simulator.request_counts()["sessions.create"] == 1


def test_it_delivers_each_session_action_and_refreshes_the_page(cast, simulator, sim_connection):
    session = _remote_session(simulator, sim_connection)
    assert session.state == "AWAITING_PLAN_APPROVAL"
    approve = services.session_approve_plan(user=cast.approver, session=session)
    assert actions.deliver(str(approve.pk)) == "done"
    session.refresh_from_db()
    # The refresh after delivery already shows Jules' answer.
    assert session.state == "IN_PROGRESS"
    message = services.session_send_message(user=cast.member, session=session, prompt="Go on")
    assert actions.deliver(str(message.pk)) == "done"
    assert session.activities.filter(kind="userMessaged", message="Go on").exists()
    archive = services.session_archive(user=cast.admin, session=session)
    assert actions.deliver(str(archive.pk)) == "done"
    unarchive = services.session_unarchive(user=cast.admin, session=session)
    assert actions.deliver(str(unarchive.pk)) == "done"
    delete = services.session_delete(user=cast.admin, session=session)
    assert actions.deliver(str(delete.pk)) == "done"
    session.refresh_from_db()
    assert session.deleted_remotely
    counts = simulator.request_counts()
    for operation in ("approvePlan", "sendMessage", "archive", "unarchive", "delete"):
        assert counts[f"sessions.{operation}"] == 1


def test_it_puts_a_transient_failure_back_with_backoff_and_a_reason(
    cast, simulator, sim_connection, fast_failures
):
    session = _remote_session(simulator, sim_connection)
    simulator.add_fault("kind=status,status=503,path=:approvePlan$")
    approve = services.session_approve_plan(user=cast.approver, session=session)
    before = timezone.now()
    assert actions.deliver(str(approve.pk)) == "pending"
    approve = _reload(approve)
    assert approve.attempts == 1
    assert before + dt.timedelta(seconds=4) < approve.next_attempt_at
    assert approve.next_attempt_at < before + dt.timedelta(seconds=7)
    assert "could not be reached" in approve.last_error
    assert "next try in 5 s" in approve.last_error
    # Not due yet: nothing is sent.
    assert actions.deliver(str(approve.pk)) == "pending"
    assert simulator.request_counts()["fault.status"] == 1
    # The second failure waits twice as long.
    _make_due(approve)
    actions.deliver(str(approve.pk))
    assert "next try in 10 s" in _reload(approve).last_error
    simulator.clear_faults()
    _make_due(approve)
    assert actions.sweep() == 1
    approve = _reload(approve)
    assert approve.status == "done" and approve.last_error == "" and approve.attempts == 3
    assert simulator.request_counts()["sessions.approvePlan"] == 1


def test_it_waits_at_least_as_long_as_retry_after(cast, simulator, sim_connection, fast_failures):
    session = _remote_session(simulator, sim_connection)
    simulator.add_fault("kind=status,status=429,retry_after=120,path=:sendMessage$")
    message = services.session_send_message(user=cast.member, session=session, prompt="hi")
    actions.deliver(str(message.pk))
    message = _reload(message)
    assert message.status == "pending"
    assert message.next_attempt_at > timezone.now() + dt.timedelta(seconds=110)
    assert "limiting the rate" in message.last_error


@pytest.mark.parametrize("retry_after", ["1000000000000", "99999999999999999999999"])
def test_it_caps_a_huge_retry_after_and_loses_nothing(
    cast, simulator, sim_connection, fast_failures, retry_after
):
    session = _remote_session(simulator, sim_connection)
    simulator.add_fault(f"kind=status,status=429,retry_after={retry_after},path=:sendMessage$")
    first = services.session_send_message(user=cast.member, session=session, prompt="one")
    second = services.session_send_message(user=cast.member, session=session, prompt="two")
    before = timezone.now()
    assert actions.deliver(str(first.pk)) == "pending"
    first = _reload(first)
    cap = dt.timedelta(seconds=actions.RETRY_AFTER_CAP_SECONDS)
    assert before + cap - dt.timedelta(seconds=5) < first.next_attempt_at <= timezone.now() + cap
    assert "limiting the rate" in first.last_error and first.claimed_until is None
    # Once Jules accepts again, both messages go, in order.
    simulator.clear_faults()
    _make_due(first)
    assert actions.deliver(str(first.pk)) == "done"
    assert actions.deliver(str(second.pk)) == "done"
    sent = list(session.activities.filter(kind="userMessaged").values_list("message", flat=True))
    assert sent == ["one", "two"]


def test_it_reads_any_retry_after_as_a_bounded_wait():
    for value in (1e300, 1e12, float("inf"), float("nan"), -5.0):
        wait = actions.backoff_seconds(1, value)
        assert 1 <= wait <= actions.RETRY_AFTER_CAP_SECONDS


def test_it_fails_permanently_with_the_reason(cast, simulator, sim_connection):
    session = _remote_session(simulator, sim_connection, advance=1)
    # The cache says it waits, but Jules is still planning: approvePlan is refused.
    Session.objects.filter(pk=session.pk).update(state="AWAITING_PLAN_APPROVAL")
    session.refresh_from_db()
    approve = services.session_approve_plan(user=cast.approver, session=session)
    assert actions.deliver(str(approve.pk)) == "failed"
    assert _reload(approve).last_error.startswith("Jules refused:")


def test_it_fails_with_words_when_the_key_is_rejected(cast, simulator, sim_connection):
    requests.post(
        f"{simulator.admin_url}/accounts", json={"keys": ["test-key"], "revoke": True}, timeout=5
    ).raise_for_status()
    action = services.session_launch(user=cast.member, connection=sim_connection, prompt="x")
    assert actions.deliver(str(action.pk)) == "failed"
    error = _reload(action).last_error
    assert "rejected this connection's API key" in error and "test-key" not in error


def test_it_holds_launches_of_a_disabled_connection_in_the_queue(cast, simulator, sim_connection):
    action = services.session_launch(user=cast.member, connection=sim_connection, prompt="x")
    sim_connection.enabled = False
    sim_connection.save()
    # docs/launch-queue.md: a queued launch waits until an admin enables it (or it is cancelled).
    assert actions.deliver(str(action.pk)) == "pending"
    assert "disabled" in _reload(action).last_error
    assert _reload(action).attempts == 0
    assert simulator.request_counts().get("sessions.create", 0) == 0


def test_it_gives_up_after_the_last_attempt(cast, simulator, sim_connection, fast_failures):
    simulator.add_fault("kind=status,status=500,path=^/sessions$,method=POST")
    action = services.session_launch(user=cast.member, connection=sim_connection, prompt="x")
    OutboxAction.objects.filter(pk=action.pk).update(attempts=actions.MAX_ATTEMPTS - 1)
    assert actions.deliver(str(action.pk)) == "failed"
    assert "could not be reached" in _reload(action).last_error


def test_it_never_sends_a_claimed_action_twice(cast, simulator, sim_connection):
    action = services.session_launch(user=cast.member, connection=sim_connection, prompt="x")
    assert actions._claim(str(action.pk))
    assert actions.deliver(str(action.pk)) == "sending"
    OutboxAction.objects.filter(pk=action.pk).update(status="pending")
    assert actions.deliver(str(action.pk)) == "done"
    assert actions.deliver(str(action.pk)) == "done"
    assert simulator.request_counts()["sessions.create"] == 1


def test_it_matches_a_launch_whose_answer_was_lost(cast, simulator, sim_connection, fast_failures):
    # Jules creates the session but answers after the client gave up: the outcome is
    # ambiguous, and resending would launch a second session.
    simulator.add_fault("kind=latency,seconds=1.5,path=^/sessions$,method=POST,first=1")
    action = services.session_launch(user=cast.member, connection=sim_connection, prompt="Once")
    assert actions.deliver(str(action.pk)) == "pending"
    _wait_for(simulator, "sessions.create", 1)
    _make_due(action)
    assert actions.deliver(str(action.pk)) == "done"
    action = _reload(action)
    assert action.result["matched"] is True and action.session is not None
    assert action.session.launched_by == cast.member
    assert simulator.request_counts()["sessions.create"] == 1


def test_it_keeps_two_launches_of_one_prompt_apart(cast, simulator, sim_connection):
    first = services.session_launch(user=cast.member, connection=sim_connection, prompt="Same")
    second = services.session_launch(user=cast.member, connection=sim_connection, prompt="Same")
    actions.deliver(str(first.pk))
    # The second one's earlier attempt is unknown; the session it finds belongs to the first.
    OutboxAction.objects.filter(pk=second.pk).update(attempts=1)
    assert actions.deliver(str(second.pk)) == "done"
    assert _reload(first).session_id != _reload(second).session_id
    assert simulator.request_counts()["sessions.create"] == 2


def test_it_matches_a_message_whose_answer_was_lost(cast, simulator, sim_connection, fast_failures):
    session = _remote_session(simulator, sim_connection)
    simulator.add_fault("kind=latency,seconds=1.5,path=:sendMessage$,first=1")
    message = services.session_send_message(user=cast.member, session=session, prompt="Once")
    assert actions.deliver(str(message.pk)) == "pending"
    _wait_for(simulator, "sessions.sendMessage", 1)
    _make_due(message)
    assert actions.deliver(str(message.pk)) == "done"
    assert _reload(message).result == {"matched": True}
    assert simulator.request_counts()["sessions.sendMessage"] == 1


def test_it_retries_after_an_unexpected_error_without_launching_twice(
    cast, simulator, sim_connection
):
    action = services.session_launch(user=cast.member, connection=sim_connection, prompt="Bug")
    with mock.patch.object(actions, "upsert_remote_session", side_effect=RuntimeError("boom")):
        assert actions.deliver(str(action.pk)) == "pending"
    assert "unexpected error" in _reload(action).last_error
    _make_due(action)
    assert actions.deliver(str(action.pk)) == "done"
    assert simulator.request_counts()["sessions.create"] == 1


def test_it_sweeps_due_and_abandoned_actions(cast, simulator, sim_connection):
    due = services.session_launch(user=cast.member, connection=sim_connection, prompt="a")
    later = services.session_launch(user=cast.member, connection=sim_connection, prompt="b")
    abandoned = services.session_launch(user=cast.member, connection=sim_connection, prompt="c")
    busy = services.session_launch(user=cast.member, connection=sim_connection, prompt="d")
    hopeless = services.session_launch(user=cast.member, connection=sim_connection, prompt="e")
    now = timezone.now()
    OutboxAction.objects.filter(pk=later.pk).update(next_attempt_at=now + dt.timedelta(hours=1))
    OutboxAction.objects.filter(pk=abandoned.pk).update(
        status="sending", attempts=1, claimed_until=now - dt.timedelta(seconds=1)
    )
    OutboxAction.objects.filter(pk=busy.pk).update(
        status="sending", attempts=1, claimed_until=now + dt.timedelta(minutes=2)
    )
    OutboxAction.objects.filter(pk=hopeless.pk).update(
        status="sending", attempts=actions.MAX_ATTEMPTS, claimed_until=now - dt.timedelta(seconds=1)
    )
    assert actions.sweep() == 2
    assert _reload(due).status == "done" and _reload(abandoned).status == "done"
    assert _reload(later).status == "pending" and _reload(busy).status == "sending"
    assert _reload(hopeless).status == "failed"
    assert "gave up" in _reload(hopeless).last_error
    assert simulator.request_counts()["sessions.create"] == 2


def test_it_runs_delivery_through_the_celery_task(
    cast, simulator, sim_connection, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        action = services.session_launch(user=cast.member, connection=sim_connection, prompt="x")
    assert _reload(action).status == "done"


# --- each action reaches Jules once, even when an answer is lost -------------------------


def test_it_approves_once_when_the_first_answer_was_lost(cast, simulator, sim_connection, settings):
    # Jules approves, then the answer is lost: resending approvePlan at once (as an
    # idempotent call) would meet "not awaiting plan approval" and fail the action.
    settings.JULES_RETRY_BUDGET = 60
    session = _remote_session(simulator, sim_connection)
    simulator.add_fault("kind=status,status=500,path=:approvePlan$,stage=after,first=1")
    approve = services.session_approve_plan(user=cast.approver, session=session)
    assert actions.deliver(str(approve.pk)) == "pending"
    assert simulator.request_counts()["sessions.approvePlan"] == 1
    _make_due(approve)
    assert actions.deliver(str(approve.pk)) == "done"
    approve = _reload(approve)
    assert approve.result["matched"] is True and approve.attempts == 2
    counts = simulator.request_counts()
    assert counts["sessions.approvePlan"] == 1
    assert counts.get("failed.sessions.approvePlan", 0) == 0


@pytest.mark.parametrize("kind", ["archive", "unarchive"])
def test_it_archives_once_when_the_first_answer_was_lost(
    cast, simulator, sim_connection, kind, settings
):
    settings.JULES_RETRY_BUDGET = 60
    session = _remote_session(simulator, sim_connection)
    if kind == "unarchive":
        JulesClient("test-key", simulator.base_url).archive_session(session.remote_id)
    simulator.add_fault(f"kind=status,status=502,path=:{kind}$,stage=after,first=1")
    service = services.session_archive if kind == "archive" else services.session_unarchive
    action = service(user=cast.admin, session=session)
    assert actions.deliver(str(action.pk)) == "pending"
    _make_due(action)
    assert actions.deliver(str(action.pk)) == "done"
    assert _reload(action).result == {"matched": True}
    assert simulator.request_counts()[f"sessions.{kind}"] == 1
    assert simulator.state.session(session.remote_id).archived is (kind == "archive")


def test_it_archives_after_a_failure_that_never_took_effect(
    cast, simulator, sim_connection, fast_failures
):
    session = _remote_session(simulator, sim_connection)
    simulator.add_fault("kind=status,status=500,path=:archive$,first=1")
    action = services.session_archive(user=cast.admin, session=session)
    assert actions.deliver(str(action.pk)) == "pending"
    _make_due(action)
    # The check finds the session not archived, so the archive is sent after all.
    assert actions.deliver(str(action.pk)) == "done"
    assert _reload(action).result == {}
    assert simulator.request_counts()["sessions.archive"] == 1
    assert simulator.state.session(session.remote_id).archived is True


def test_it_resends_a_refused_write_within_one_delivery(cast, simulator, sim_connection, settings):
    # A 429 (and a 503) surely did not take effect, so the client may resend it at once.
    settings.JULES_RETRY_BUDGET = 30
    session = _remote_session(simulator, sim_connection)
    simulator.add_fault("kind=status,status=429,retry_after=0,path=:sendMessage$,first=2")
    message = services.session_send_message(user=cast.member, session=session, prompt="Go")
    assert actions.deliver(str(message.pk)) == "done"
    assert _reload(message).attempts == 1
    assert simulator.request_counts()["sessions.sendMessage"] == 1


def test_it_enqueues_the_retry_after_the_backoff(cast, simulator, sim_connection, settings):
    settings.JULES_RETRY_BUDGET = 0
    settings.OUTBOX_BACKOFF_SECONDS = 2
    session = _remote_session(simulator, sim_connection)
    simulator.add_fault("kind=status,status=503,path=:archive$")
    action = services.session_archive(user=cast.admin, session=session)
    from sessions_app import tasks

    # As with a real worker (the unit tests' autouse fixture restores eager mode).
    tasks.deliver_action.app.conf.task_always_eager = False
    with mock.patch.object(tasks.deliver_action, "apply_async") as apply_async:
        assert actions.deliver(str(action.pk)) == "pending"
        apply_async.assert_called_once_with((str(action.pk),), countdown=2.5)
        _make_due(action)
        actions.deliver(str(action.pk))
        assert apply_async.call_args == mock.call((str(action.pk),), countdown=4.5)
        # A dead broker leaves the retry to the sweep; the delivery still ends cleanly.
        apply_async.side_effect = ConnectionRefusedError("broker down")
        _make_due(action)
        assert actions.deliver(str(action.pk)) == "pending"
    action = _reload(action)
    assert action.attempts == 3 and "next try in 8 s" in action.last_error
    assert f"at {action.next_attempt_at.astimezone(dt.UTC):%H:%M:%S} UTC" in action.last_error


# --- what the pages say while Jules is down or limiting ---------------------------------


def test_the_launch_page_says_why_it_waits_and_when_it_tries_again(
    client, cast, simulator, sim_connection, fast_failures
):
    simulator.add_fault("kind=status,status=429,retry_after=90,path=^/sessions$,method=POST")
    action = services.session_launch(user=cast.member, connection=sim_connection, prompt="Wait")
    assert actions.deliver(str(action.pk)) == "pending"
    client.force_login(cast.member)
    url = reverse("sessions_app:action-status", args=[action.pk])
    response = client.get(url)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Waiting to send it to Jules" in html
    assert "Not through yet: Jules is limiting the rate of requests" in html
    due = _reload(action).next_attempt_at.astimezone(dt.UTC)
    assert f"next try in 90 s, at {due:%H:%M:%S} UTC." in html
    # It keeps polling until the action is through.
    assert "every 1s" in html
    assert client.get(url, HTTP_HX_REQUEST="true").status_code == 200


def test_the_session_page_says_an_action_waits_for_jules(
    client, cast, simulator, sim_connection, fast_failures
):
    session = _remote_session(simulator, sim_connection)
    simulator.add_fault("kind=status,status=503,path=:archive$")
    action = services.session_archive(user=cast.admin, session=session)
    assert actions.deliver(str(action.pk)) == "pending"
    client.force_login(cast.approver)
    response = client.get(reverse("sessions_app:session-detail", args=[session.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Archive is waiting to reach Jules: Jules could not be reached" in html
    assert "next try in 5 s, at " in html


def test_a_sessions_actions_reach_jules_in_the_order_they_were_taken(
    cast, simulator, sim_connection, fast_failures
):
    session = _remote_session(simulator, sim_connection)
    simulator.add_fault("kind=status,status=503,path=:archive$,first=1")
    archive = services.session_archive(user=cast.admin, session=session)
    undo = services.session_unarchive(user=cast.admin, session=session)
    assert actions.deliver(str(archive.pk)) == "pending"
    # The undo is due now, but the archive it undoes has not reached Jules yet.
    assert actions.deliver(str(undo.pk)) == "pending"
    waiting = _reload(undo)
    assert waiting.attempts == 0 and waiting.last_error.startswith(
        "Waiting for the earlier archive of this session"
    )
    assert waiting.next_attempt_at > _reload(archive).next_attempt_at
    assert simulator.request_counts().get("sessions.unarchive", 0) == 0
    _make_due(undo)
    assert actions.deliver(str(undo.pk)) == "pending"
    _make_due(archive)
    assert actions.deliver(str(archive.pk)) == "done"
    _make_due(undo)
    assert actions.deliver(str(undo.pk)) == "done"
    assert _reload(undo).attempts == 1
    assert simulator.state.session(session.remote_id).archived is False
    counts = simulator.request_counts()
    assert counts["sessions.archive"] == 1 and counts["sessions.unarchive"] == 1


def test_a_failed_action_does_not_hold_up_the_next(cast, simulator, sim_connection):
    session = _remote_session(simulator, sim_connection)
    archive = services.session_archive(user=cast.admin, session=session)
    OutboxAction.objects.filter(pk=archive.pk).update(status="failed", last_error="Refused")
    message = services.session_send_message(user=cast.member, session=session, prompt="Next")
    assert actions.deliver(str(message.pk)) == "done"


# --- Redis out of reach: the cache answers misses ------------------------------------------


def test_the_cache_answers_misses_when_redis_is_out_of_reach(caplog):
    import socket

    from julesweb.cache import ResilientRedisCache

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cache = ResilientRedisCache(
        f"redis://127.0.0.1:{port}/0",
        {"OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}},
    )
    started = time.monotonic()
    assert cache.get("k", "default") == "default"
    assert cache.get_many(["a", "b"]) == {}
    assert cache.has_key("k") is False
    assert cache.add("k", 1) is False
    cache.set("k", 1)
    assert cache.set_many({"a": 1, "b": 2}) == ["a", "b"]
    assert cache.touch("k") is False
    assert cache.delete("k") is False
    cache.delete_many(["a"])
    assert time.monotonic() - started < 5
    assert "The cache is unreachable (ConnectionError)" in caplog.text
