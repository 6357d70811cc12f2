"""The API's end-to-end flow on the real stack (issue 15): a client written only from the
served schema (tests/schema_client.py), over HTTP to a live portal on PostgreSQL, drives a
session through launch, plan, approve, message, completion and the diff, while real
Celery worker processes deliver the outbox through Redis and sync from the simulator.

The test plays only beat's part (asking for a sync after it moves the simulator's clock)
and polls the API as an integrator would; it never calls the outbox or the sync itself.
"""

from __future__ import annotations

from typing import Any

from sessions_app import tasks
from sessions_app.api.tokens import token_create
from sessions_app.models import Scope, Source
from tests.integration.conftest import align_simulator_clock, wait_for
from tests.schema_client import SchemaClient, http_transport

TIMEOUT = 60.0


def test_a_schema_only_client_drives_a_session_to_its_diff_on_the_stack(
    workers, cast, simulator, sim_connection, live_server
):
    workers.start("api", queues="sync,actions", concurrency=2)
    align_simulator_clock(simulator)
    tasks.sync_sources.delay(sim_connection.pk)
    wait_for(lambda: Source.objects.filter(connection=sim_connection).exists(), TIMEOUT)
    _, member_raw = token_create(user=cast.member, name="ci", scopes=list(Scope.values))
    _, approver_raw = token_create(user=cast.approver, name="bot", scopes=["read", "approve"])
    transport = http_transport(live_server.url)
    ci, approver = SchemaClient(transport, member_raw), SchemaClient(transport, approver_raw)
    op = ci.flow()

    def done(client: SchemaClient, action: dict[str, Any]) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            now = client.call(op["action"], action_id=action["id"])
            assert now["status"] != "failed", now
            return now if now["status"] == "done" else None

        result: dict[str, Any] = wait_for(finished, TIMEOUT)
        return result

    def state_becomes(pk: int, state: str) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            session = ci.call(op["session"], pk=pk)
            return session if session["state"] == state else None

        result: dict[str, Any] = wait_for(reached, TIMEOUT)
        return result

    body = {
        "connection": sim_connection.pk,
        "prompt": "Fix the rounding bug",
        "source": "sources/github/acme/billing",
        "starting_branch": "main",
    }
    launch = ci.call(op["launch"], body, **{"Idempotency-Key": "launch-1"})
    # A retry (a CI job restarted, say) answers the first launch instead of a second.
    assert ci.call(op["launch"], body, **{"Idempotency-Key": "launch-1"})["id"] == launch["id"]
    pk = done(ci, launch)["session"]
    assert isinstance(pk, int)

    simulator.advance(70)
    tasks.sync_session.delay(pk)  # What beat's schedule asks for.
    state_becomes(pk, "AWAITING_PLAN_APPROVAL")
    waiting = wait_for(lambda: approver.call(op["approvals"])["items"], TIMEOUT)
    assert [s["id"] for s in waiting] == [pk]

    # The worker syncs the session after it delivers the approval.
    done(approver, approver.call(op["approve"], pk=pk))
    state_becomes(pk, "IN_PROGRESS")
    seen = ci.call(op["activities"], pk=pk)["items"]
    assert "planApproved" in {a["kind"] for a in seen}

    done(ci, ci.call(op["message"], {"prompt": "Add a test too"}, pk=pk))

    def messaged() -> list[str]:
        newer = ci.call(op["activities"], pk=pk, after=seen[-1]["id"])["items"]
        return [a["message"] for a in newer if a["kind"] == "userMessaged"]

    assert wait_for(messaged, TIMEOUT) == ["Add a test too"]

    simulator.advance(900)
    tasks.sync_session.delay(pk)
    completed = state_becomes(pk, "COMPLETED")
    patches = [o["patch"] for o in completed["outputs"] if o["kind"] == "changeSet"]
    assert patches and patches[0].startswith("diff --git")
    assert ci.call(ci.operation_id("get", "/sessions"))["items"][0]["id"] == pk

    # The sync recorded the notification events; a poller sees them once held back long
    # enough (docs/api.md, "Exports and events").
    def polled() -> list[str] | None:
        kinds = [e["type"] for e in ci.call(op["events"])["items"]]
        return kinds if "session.completed" in kinds else None

    kinds = wait_for(polled, TIMEOUT)
    assert kinds.count("session.completed") == 1
    assert kinds.index("plan.awaiting_approval") < kinds.index("session.completed")
