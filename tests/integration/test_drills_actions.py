"""Fault drills of the outbox: real Celery workers, PostgreSQL, Redis and the simulator.

Every action a person can take (launch, approve, message, archive, unarchive, delete) is
sent while the simulator refuses, fails, stalls or garbles the calls, or while the worker
sending it is killed. The simulator's own record of the calls that took effect
(`/_sim/requests`, and its sessions) must show each action exactly once, and the portal
must show each one done.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from typing import Any

import pytest
import requests
from django.urls import reverse

from jules.client import JulesClient
from jules_simulator import start_simulator
from sessions_app import sync
from sessions_app.models import OutboxAction, Session
from sessions_app.sessions import services
from tests.factories import ConnectionFactory, MembershipFactory, TeamFactory, UserFactory
from tests.integration.conftest import align_simulator_clock, drive_outbox, wait_for

KEY = "drill-key"
EACH = 3  # actions of each kind per drill
WRITES = (
    "sessions.create",
    "sessions.approvePlan",
    "sessions.sendMessage",
    "sessions.archive",
    "sessions.unarchive",
    "sessions.delete",
)
# The worker's client: a short read timeout, so that a 2 s stall is a timeout, and the
# outbox's first backoff of 1 s, so that the drill takes seconds rather than minutes. (The
# resend comes 1.5 s after the timeout, when the stalled request has landed: a request
# that lands after the check before a resend is the one case no client can catch.)
WORKER_ENV = {
    "JULES_READ_TIMEOUT": "1.5",
    "JULES_RETRY_BUDGET": "20",
    "OUTBOX_BACKOFF_SECONDS": "1",
}


@pytest.fixture
def sim():
    simulator = start_simulator(api_keys=[KEY], manual_clock=True, seed=11)
    yield simulator
    simulator.stop()


def _counts(sim: Any) -> Counter[str]:
    # The admin API, as an outside observer would read it.
    answer = requests.get(f"{sim.admin_url}/requests", timeout=5)
    answer.raise_for_status()
    return Counter(answer.json()["counts"])


def _stage(sim: Any) -> dict[str, Any]:
    """A team, its admin, and sessions on Jules in the states each action needs."""
    team = TeamFactory(slug="drill")
    admin = UserFactory(username="drill-admin")
    MembershipFactory(team=team, user=admin, role="admin")
    connection: Any = ConnectionFactory(team=team, base_url=sim.base_url, api_key=KEY)
    client = JulesClient(KEY, sim.base_url)
    remote: dict[str, list[str]] = {}
    for kind in ("approve", "message", "archive", "unarchive", "delete"):
        remote[kind] = [
            client.create_session(
                prompt=f"[sim:plan_approval] {kind} target {i}",
                source="sources/github/acme/billing",
                starting_branch="main",
                require_plan_approval=True,
            ).id
            for i in range(EACH)
        ]
    for remote_id in remote["unarchive"]:
        client.archive_session(remote_id)
    # Past planning: every session now awaits the approval of its plan.
    sim.advance(90)
    align_simulator_clock(sim)
    sync.sync_connection(connection.pk, full=True)
    sessions = {
        kind: [Session.objects.get(remote_id=remote_id) for remote_id in ids]
        for kind, ids in remote.items()
    }
    assert all(s.state == "AWAITING_PLAN_APPROVAL" for group in sessions.values() for s in group), (
        "the staged sessions should await plan approval"
    )
    return {"team": team, "admin": admin, "connection": connection, "sessions": sessions}


def _act(stage: dict[str, Any], tag: str) -> dict[str, list[OutboxAction]]:
    """Each kind of action through the services, as the views call them."""
    admin, sessions = stage["admin"], stage["sessions"]
    return {
        "launch": [
            services.session_launch(
                user=admin,
                connection=stage["connection"],
                prompt=f"Drill launch {tag} {i}",
                source_name="sources/github/acme/billing",
                starting_branch="main",
            )
            for i in range(EACH)
        ],
        "approve": [
            services.session_approve_plan(user=admin, session=s) for s in sessions["approve"]
        ],
        "message": [
            services.session_send_message(user=admin, session=s, prompt=f"Drill message {tag}")
            for s in sessions["message"]
        ],
        "archive": [services.session_archive(user=admin, session=s) for s in sessions["archive"]],
        "unarchive": [
            services.session_unarchive(user=admin, session=s) for s in sessions["unarchive"]
        ],
        "delete": [services.session_delete(user=admin, session=s) for s in sessions["delete"]],
    }


def _assert_each_delivered_once(
    sim: Any, stage: dict[str, Any], done: dict[str, list[OutboxAction]], before: Counter[str]
) -> None:
    """The simulator saw each action take effect once; the portal shows each one done."""
    for kind, group in done.items():
        for action in group:
            action.refresh_from_db()
            assert action.status == "done", (kind, action.status, action.last_error)
    counts = _counts(sim)
    taken = {op: counts[op] - before[op] for op in WRITES}
    assert taken == dict.fromkeys(WRITES, EACH), taken

    account = sim.state.account(KEY)
    # Launch: one session per launch, each linked to its own action and its launcher.
    prompts = Counter(s.prompt for s in account.sessions.values())
    remote_ids = set()
    for action in done["launch"]:
        assert prompts[action.payload["prompt"]] == 1, action.payload["prompt"]
        remote_ids.add(action.result["remote_id"])
        assert action.session is not None and action.session.launched_by == stage["admin"]
    assert len(remote_ids) == EACH
    sessions = stage["sessions"]
    # Approve: one approval by a person per session; message: one message per session.
    for session in sessions["approve"]:
        remote = sim.state.session(session.remote_id)
        approvals = [a for a in remote.activities if a.kind == "planApproved"]
        assert [a.originator for a in approvals] == ["user"], session.remote_id
    for action in done["message"]:
        assert action.session is not None
        remote = sim.state.session(action.session.remote_id)
        said = [a for a in remote.activities if a.kind == "userMessaged"]
        assert [a.payload.get("userMessage") for a in said] == [action.payload["prompt"]]
    # Archive, unarchive, delete: Jules holds the intent, and so does the portal's cache.
    for session in sessions["archive"]:
        assert sim.state.session(session.remote_id).archived is True
        assert Session.objects.get(pk=session.pk).archived is True
    for session in sessions["unarchive"]:
        assert sim.state.session(session.remote_id).archived is False
        assert Session.objects.get(pk=session.pk).archived is False
    for session in sessions["delete"]:
        assert sim.state.session(session.remote_id) is None
        assert Session.objects.get(pk=session.pk).deleted_remotely is True


FAULTS = (
    # Launch: a 429 storm without Retry-After, then a create whose answer is cut in half
    # after Jules made the session (docs/jules-api.md#non-idempotent-calls).
    "status=429,op=sessions.create,first=4",
    "kind=truncate,op=sessions.create,limit=1",
    # Approve: refusals (503) the client resends, then a 500 after the approval took effect.
    "status=503,op=sessions.approvePlan,first=2",
    "status=500,op=sessions.approvePlan,stage=after,limit=1",
    # Message: a stall past the client's read timeout (Jules records the message after the
    # client gave up), then 429s with Retry-After.
    "kind=latency,seconds=2,op=sessions.sendMessage,first=1",
    "status=429,retry_after=1,op=sessions.sendMessage,after=1,first=3",
    # Archive: a 200 whose body is not JSON (nothing done), then a body cut after the work.
    "kind=malformed,op=sessions.archive,first=1",
    "kind=truncate,op=sessions.archive,after=1,limit=1",
    # Unarchive: 429s with Retry-After as an HTTP date, then a connection reset.
    "status=429,retry_after=1,retry_format=date,op=sessions.unarchive,first=2",
    "kind=reset,op=sessions.unarchive,after=2,limit=1",
    # Delete: a gateway's HTML 502 after the delete took effect, then a plain 500.
    "status=502,op=sessions.delete,stage=after,limit=1",
    "status=500,op=sessions.delete,after=1,limit=1",
    # Reads (the checks before a resend): 5xx and garbled bodies now and then.
    "status=500,method=GET,every=3,limit=6",
    "kind=malformed,method=GET,every=5,limit=3",
)


def test_every_action_is_delivered_once_under_faults(workers, sim):
    stage = _stage(sim)
    before = _counts(sim)
    for spec in FAULTS:
        sim.add_fault(spec)
    workers.extra_env = WORKER_ENV
    workers.start("a1", queues="actions")
    workers.start("a2", queues="actions")
    started = time.monotonic()
    done = _act(stage, "faults")
    drive_outbox(timeout=120)
    elapsed = time.monotonic() - started
    _assert_each_delivered_once(sim, stage, done, before)
    counts = _counts(sim)
    for fault in ("fault.status", "fault.truncate", "fault.malformed", "fault.latency"):
        assert counts[fault] > 0, f"{fault} never fired: {dict(counts)}"
    assert counts["fault.reset"] == 1
    # The ambiguous ones were settled by asking Jules, not by sending again.
    matched = [a for group in done.values() for a in group if (a.result or {}).get("matched")]
    assert {a.kind for a in matched} >= {"launch", "approve", "message", "archive"}
    print(f"faults drill: {sum(map(len, done.values()))} actions in {elapsed:.1f} s")


def test_the_launch_page_moves_on_once_delivered_under_faults(workers, sim, client):
    stage = _stage(sim)
    sim.add_fault("status=429,retry_after=1,op=sessions.create,first=3")
    workers.extra_env = {**WORKER_ENV, "JULES_RETRY_BUDGET": "0"}
    workers.start("a1", queues="actions")
    action = services.session_launch(
        user=stage["admin"], connection=stage["connection"], prompt="Drill page"
    )
    client.force_login(stage["admin"])
    url = reverse("sessions_app:action-status", args=[action.pk])
    # While Jules is limiting, the page says so and when the next try is.

    def waiting_page() -> str | None:
        html = client.get(url).content.decode()
        return html if "Not through yet" in html else None

    page = wait_for(waiting_page, 30)
    assert "Jules is limiting the rate of requests" in page and "next try in" in page
    drive_outbox(timeout=90)
    response = client.get(url)
    action.refresh_from_db()
    assert response.status_code == 302
    assert response["Location"] == reverse("sessions_app:session-detail", args=[action.session_id])
    assert _counts(sim)["sessions.create"] == EACH * 5 + 1


def test_an_action_converges_after_its_worker_is_killed_mid_delivery(workers, sim):
    stage = _stage(sim)
    before = _counts(sim)
    # Each write stalls for 4 s before Jules carries it out: long enough to kill the worker
    # while it waits for the answer, so that Jules acts on a request nobody hears back from.
    sim.add_fault("kind=latency,seconds=4,method=POST,first=2")
    sim.add_fault("kind=latency,seconds=4,method=DELETE,first=1")
    workers.extra_env = {**WORKER_ENV, "JULES_READ_TIMEOUT": "30"}
    first = workers.start("k1", queues="actions", concurrency=3)
    admin, sessions = stage["admin"], stage["sessions"]
    launch = services.session_launch(
        user=admin, connection=stage["connection"], prompt="Drill killed launch"
    )
    message = services.session_send_message(
        user=admin, session=sessions["message"][0], prompt="Drill killed message"
    )
    delete = services.session_delete(user=admin, session=sessions["delete"][0])
    killed = [launch, message, delete]
    wait_for(
        lambda: (
            OutboxAction.objects.filter(pk__in=[a.pk for a in killed], status="sending").count()
            == 3
        ),
        30,
    )
    wait_for(lambda: _counts(sim)["fault.latency"] == 3, 30)
    workers.kill(first, signal.SIGKILL)
    # Jules carries the three requests out after their sender died.
    wait_for(
        lambda: all(
            _counts(sim)[op] - before[op] == 1
            for op in ("sessions.create", "sessions.sendMessage", "sessions.delete")
        ),
        30,
    )
    assert set(OutboxAction.objects.values_list("status", flat=True)) == {"sending"}
    # The claims of the dead worker outlive it (three minutes); end them now instead.
    from django.utils import timezone

    OutboxAction.objects.filter(status="sending").update(claimed_until=timezone.now())
    workers.start("k2", queues="actions")
    drive_outbox(timeout=60)
    for action in killed:
        action.refresh_from_db()
        assert action.status == "done", action.last_error
        assert action.attempts == 2
    assert launch.result["matched"] is True and message.result == {"matched": True}
    counts = _counts(sim)
    for op in ("sessions.create", "sessions.sendMessage", "sessions.delete"):
        assert counts[op] - before[op] == 1, op
    prompts = Counter(s.prompt for s in sim.state.account(KEY).sessions.values())
    assert prompts["Drill killed launch"] == 1
    remote = sim.state.session(sessions["message"][0].remote_id)
    said = [a.payload.get("userMessage") for a in remote.activities if a.kind == "userMessaged"]
    assert said == ["Drill killed message"]
    assert Session.objects.get(pk=delete.session_id).deleted_remotely is True
