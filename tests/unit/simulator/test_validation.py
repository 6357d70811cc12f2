"""What a Google front end rejects with 400 INVALID_ARGUMENT (docs/jules-api.md#json-conventions)"""

from __future__ import annotations

import pytest

from tests.unit.simulator.helpers import call, create, get, q, repo


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'"a string"',
        {"session": {"prompt": "wrapped"}},
        {"title": "no prompt"},
        {"prompt": "   "},
        {"prompt": 5},
        {"prompt": "x", "automationMode": "SOMETIMES"},
        {"prompt": "x", "automationMode": "ALWAYS_CREATE_PR"},
        {"prompt": "x", "requirePlanApproval": "yes"},
        {"prompt": "x", "state": "RUNNING"},
        {"prompt": "x", "sourceContext": {"source": "sources/github/acme/billing"}},
        {
            "prompt": "x",
            "sourceContext": {"source": "sources/github/acme/billing", "githubRepoContext": {}},
        },
        {"prompt": "x", "sourceContext": {"githubRepoContext": {"startingBranch": "main"}}},
        {"prompt": "x", **repo(), "branch": "main"},
        {
            "prompt": "x",
            "sourceContext": {
                "source": "sources/github/acme/billing",
                "githubRepoContext": {"startingBranch": "main", "depth": 1},
            },
        },
    ],
)
def test_it_rejects_invalid_creates(empty_sim, body):
    reply = call(empty_sim, "POST", "/sessions", body)
    assert reply.status == 400 and reply.error["status"] == "INVALID_ARGUMENT"
    assert reply.error["code"] == 400
    assert "sessions.create" not in empty_sim.request_counts()


def test_it_names_an_unknown_field_like_a_google_front_end(empty_sim):
    reply = call(empty_sim, "POST", "/sessions", {"session": {"prompt": "x"}})
    assert reply.error["message"] == (
        "Invalid JSON payload received. Unknown name \"session\" at 'session': Cannot find field."
    )
    assert reply.error["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"


def test_it_accepts_nulls_snake_case_names_and_ignores_output_fields(empty_sim):
    session = create(
        empty_sim,
        "x",
        title=None,
        require_plan_approval=True,
        state="COMPLETED",
        id="1",
        outputs=[],
    )
    assert session["state"] == "QUEUED" and session["id"] != "1"
    assert session["requirePlanApproval"] is True and session["title"] == "X"


def test_it_accepts_an_enum_by_number(empty_sim):
    assert create(empty_sim, "x", automationMode=1)["automationMode"] == "AUTO_CREATE_PR"


def test_it_answers_404_for_an_unknown_or_foreign_source(empty_sim):
    reply = call(
        empty_sim, "POST", "/sessions", {"prompt": "x", **repo("sources/github/acme/nope")}
    )
    assert reply.status == 404 and reply.error["status"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("verb", "body"),
    [
        ("sendMessage", {}),
        ("sendMessage", {"prompt": ""}),
        ("sendMessage", {"prompt": "x", "session": "y"}),
        ("sendMessage", {"message": "x"}),
        ("sendMessage", b"{oops"),
        ("approvePlan", {"planId": "abc"}),
        ("archive", {"archived": True}),
        ("unarchive", b"[1]"),
    ],
)
def test_it_rejects_invalid_action_bodies(empty_sim, verb, body):
    sid = create(empty_sim)["id"]
    reply = call(empty_sim, "POST", f"/sessions/{sid}:{verb}", body)
    assert reply.status == 400 and reply.error["status"] == "INVALID_ARGUMENT"


def test_it_accepts_approve_without_a_body_or_with_an_empty_one(empty_sim):
    ids = [create(empty_sim, "x", requirePlanApproval=True)["id"] for _ in range(2)]
    empty_sim.advance(70)
    assert call(empty_sim, "POST", f"/sessions/{ids[0]}:approvePlan").json == {}
    assert call(empty_sim, "POST", f"/sessions/{ids[1]}:approvePlan", {}).json == {}


@pytest.mark.parametrize(
    "path",
    [
        "/sessions/{id}/activities?createTime=2026-01-01T00:00:00Z",
        "/sessions/{id}/activities?create_time=2026-01-01T00:00:00Z",
        "/sessions?archived=true",
        "/sessions?nextPageToken=abc",
        "/sessions/{id}?view=FULL",
        "/sources?owner=acme",
    ],
)
def test_it_rejects_query_parameters_that_bind_to_no_field(sim, path):
    sid = call(sim, "GET", "/sessions").json["sessions"][0]["id"]
    reply = call(sim, "GET", path.replace("{id}", sid))
    assert reply.status == 400 and reply.error["status"] == "INVALID_ARGUMENT"
    assert "Cannot bind query parameter" in reply.error["message"]


def test_it_accepts_google_system_parameters_and_snake_case_list_parameters(sim):
    assert call(sim, "GET", "/sessions?prettyPrint=false&alt=json&fields=sessions").status == 200
    assert len(call(sim, "GET", "/sessions?page_size=7").json["sessions"]) == 7
    sid = call(sim, "GET", "/sessions").json["sessions"][0]["id"]
    assert get(sim, sid)["id"] == sid


def test_it_rejects_a_malformed_filter_value(sim):
    reply = call(sim, "GET", "/sessions?filter=" + q("archived ="))
    assert reply.status == 400 and reply.error["status"] == "INVALID_ARGUMENT"
