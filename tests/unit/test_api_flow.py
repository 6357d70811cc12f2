"""A client that knows only the served schema (operation ids, path templates, parameter
names; tests/schema_client.py) drives a session through the API: launch, plan, approve,
message, completion, the diff. The outbox and the sync run as the workers would run them,
against the simulator. tests/integration/test_api_flow_stack.py runs the same flow on the
real stack."""

from __future__ import annotations

import time

import pytest
import requests

from sessions_app import sync
from sessions_app.api.tokens import token_create
from sessions_app.models import Scope
from sessions_app.outbox import delivery
from tests.schema_client import SchemaClient, django_transport

pytestmark = pytest.mark.django_db


def test_a_schema_only_client_drives_a_session_to_its_diff(client, cast, simulator, sim_connection):
    now = requests.post(f"{simulator.admin_url}/clock/advance", json={"seconds": 0}, timeout=5)
    simulator.advance(max(0.0, time.time() - now.json()["now"]))
    sync.sync_sources(sim_connection.pk)
    _, member_raw = token_create(user=cast.member, name="ci", scopes=list(Scope.values))
    _, approver_raw = token_create(user=cast.approver, name="bot", scopes=["read", "approve"])
    transport = django_transport(client)
    ci, approver = SchemaClient(transport, member_raw), SchemaClient(transport, approver_raw)
    op = ci.flow()

    action = ci.call(
        op["launch"],
        {
            "connection": sim_connection.pk,
            "prompt": "Fix the rounding bug",
            "source": "sources/github/acme/billing",
            "starting_branch": "main",
        },
    )
    delivery.deliver(action["id"])  # What the outbox worker does once the launch commits.
    launched = ci.call(op["action"], action_id=action["id"])
    assert launched["status"] == "done"
    pk = launched["session"]

    simulator.advance(70)
    sync.sync_one_session(pk)
    assert ci.call(op["session"], pk=pk)["state"] == "AWAITING_PLAN_APPROVAL"
    assert [s["id"] for s in approver.call(op["approvals"])["items"]] == [pk]

    delivery.deliver(approver.call(op["approve"], pk=pk)["id"])
    assert ci.call(op["session"], pk=pk)["state"] == "IN_PROGRESS"
    seen = ci.call(op["activities"], pk=pk)["items"]

    delivery.deliver(ci.call(op["message"], {"prompt": "Add a test too"}, pk=pk)["id"])
    newer = ci.call(op["activities"], pk=pk, after=seen[-1]["id"])["items"]
    assert [a["message"] for a in newer if a["kind"] == "userMessaged"] == ["Add a test too"]

    simulator.advance(900)
    sync.sync_one_session(pk)
    done = ci.call(op["session"], pk=pk)
    assert done["state"] == "COMPLETED"
    patches = [o["patch"] for o in done["outputs"] if o["kind"] == "changeSet"]
    assert patches and patches[0].startswith("diff --git")
