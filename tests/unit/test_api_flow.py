"""A client that knows only the served schema (operation ids, path templates, parameter
names) drives a session through the API: launch, plan, approve, message, completion, the
diff. The outbox and the sync run as the workers would run them, against the simulator."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from sessions_app import sync
from sessions_app.api.tokens import token_create
from sessions_app.models import Scope
from sessions_app.outbox import delivery

pytestmark = pytest.mark.django_db


class SchemaClient:
    """Calls operations by their `operationId`, building requests from the schema alone."""

    def __init__(self, http: Any, token: str) -> None:
        self.http, self.headers = http, {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        schema = http.get("/api/v1/openapi.json").json()
        self.operations = {
            op["operationId"]: (method, path, op)
            for path, item in schema["paths"].items()
            for method, op in item.items()
        }

    def call(self, operation: str, body: Any = None, **params: Any) -> Any:
        method, path, op = self.operations[operation]
        query = {}
        for parameter in op.get("parameters", []):
            name = parameter["name"]
            if name in params and parameter["in"] == "path":
                path = path.replace("{" + name + "}", str(params[name]))
            elif name in params:
                query[name] = params[name]
        if method == "get":
            response = self.http.get(path, query, **self.headers)
        else:
            response = self.http.post(
                path, body or {}, content_type="application/json", **self.headers
            )
        assert response.status_code < 300, (operation, response.content)
        return response.json()


def _operation_id(client: SchemaClient, method: str, suffix: str) -> str:
    [found] = [
        op_id
        for op_id, (m, path, _) in client.operations.items()
        if m == method and path.endswith(suffix)
    ]
    return found


def test_a_schema_only_client_drives_a_session_to_its_diff(client, cast, simulator, sim_connection):
    now = requests.post(f"{simulator.admin_url}/clock/advance", json={"seconds": 0}, timeout=5)
    simulator.advance(max(0.0, time.time() - now.json()["now"]))
    sync.sync_sources(sim_connection.pk)
    _, member_raw = token_create(user=cast.member, name="ci", scopes=list(Scope.values))
    _, approver_raw = token_create(user=cast.approver, name="bot", scopes=["read", "approve"])
    ci, approver = SchemaClient(client, member_raw), SchemaClient(client, approver_raw)
    op = {
        "launch": _operation_id(ci, "post", "/sessions"),
        "action": _operation_id(ci, "get", "/actions/{action_id}"),
        "session": _operation_id(ci, "get", "/sessions/{pk}"),
        "activities": _operation_id(ci, "get", "/sessions/{pk}/activities"),
        "approvals": _operation_id(ci, "get", "/approvals"),
        "approve": _operation_id(ci, "post", "/approve"),
        "message": _operation_id(ci, "post", "/messages"),
    }

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
