"""The twelve routes, 404s, the 401 bodies, accounts (docs/jules-api.md#authentication)."""

from __future__ import annotations

import pytest

from tests.unit.simulator.helpers import NOT_FOUND, admin, call, create, repo

OPERATIONS = {
    "sessions.create",
    "sessions.get",
    "sessions.list",
    "sessions.delete",
    "sessions.sendMessage",
    "sessions.approvePlan",
    "sessions.archive",
    "sessions.unarchive",
    "sessions.activities.list",
    "sessions.activities.get",
    "sources.list",
    "sources.get",
}


def test_it_serves_the_twelve_operations_on_their_exact_paths(empty_sim):
    sim = empty_sim
    session = create(sim, "Plan first", requirePlanApproval=True, **repo())
    sid = session["id"]
    sim.advance(70)
    listed = call(sim, "GET", f"/sessions/{sid}/activities").json["activities"]
    answers = [
        call(sim, "GET", f"/sessions/{sid}"),
        call(sim, "GET", "/sessions"),
        call(sim, "GET", f"/sessions/{sid}/activities/{listed[0]['id']}"),
        call(sim, "POST", f"/sessions/{sid}:approvePlan"),
        call(sim, "POST", f"/sessions/{sid}:sendMessage", {"prompt": "Also update the docs."}),
        call(sim, "POST", f"/sessions/{sid}:archive", {}),
        call(sim, "POST", f"/sessions/{sid}:unarchive", {}),
        call(sim, "GET", "/sources"),
        call(sim, "GET", "/sources/github/acme/billing"),
        call(sim, "DELETE", f"/sessions/{sid}"),
    ]
    assert [a.status for a in answers] == [200] * len(answers)
    assert set(sim.request_counts()) >= OPERATIONS


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/sessions/{id}/approvePlan"),  # a slash instead of the colon
        ("POST", "/sessions/{id}/sendMessage"),
        ("GET", "/sessions/{id}:archive"),  # a wrong method
        ("DELETE", "/sessions/{id}:archive"),
        ("PATCH", "/sessions/{id}"),
        ("PUT", "/sessions"),
        ("DELETE", "/sessions"),
        ("POST", "/sources"),
        ("POST", "/sessions/{id}:cancel"),  # no such verb
        ("POST", "/sessions/{id}:pause"),
        ("GET", "/scheduledSessions"),
        ("GET", "/sessions/{id}/"),
        ("GET", "/sessions/{id}/activities/{id}:get"),
        ("GET", "/"),
    ],
)
def test_it_answers_404_with_the_google_body_to_wrong_routes(empty_sim, method, path):
    sid = create(empty_sim)["id"]
    reply = call(empty_sim, method, path.replace("{id}", sid))
    assert reply.status == 404 and reply.json == NOT_FOUND
    assert reply.headers["Content-Type"] == "application/json; charset=UTF-8"


def test_it_answers_an_html_404_outside_the_api_version(empty_sim):
    reply = call(empty_sim, "GET", "/v1/sessions", prefix="")
    assert reply.status == 404 and reply.headers["Content-Type"].startswith("text/html")


def test_it_gets_sources_by_their_multi_segment_ids(empty_sim):
    reply = call(empty_sim, "GET", "/sources/github/acme/billing")
    assert reply.status == 200 and reply.json["id"] == "github/acme/billing"
    assert reply.json["name"] == "sources/github/acme/billing"
    assert call(empty_sim, "GET", "/sources/github/acme").status == 404
    assert call(empty_sim, "GET", "/sources/github/acme/billing/extra").status == 404
    assert call(empty_sim, "GET", "/sources/github-acme-billing").status == 404


MISSING_KEY_BODY = {
    "error": {
        "code": 401,
        "message": "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
        "status": "UNAUTHENTICATED",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "CREDENTIALS_MISSING",
                "domain": "googleapis.com",
            }
        ],
    }
}


@pytest.mark.parametrize("path", ["/sessions", "/sources", "/sessions/123/activities"])
def test_it_answers_the_exact_missing_key_body(empty_sim, path):
    reply = call(empty_sim, "GET", path, key=None)
    assert reply.status == 401 and reply.json == MISSING_KEY_BODY


def test_it_reads_the_key_header_in_any_case(empty_sim):
    for name in ("X-Goog-Api-Key", "x-goog-api-key", "X-GOOG-API-KEY"):
        assert call(empty_sim, "GET", "/sessions", key=None, headers={name: "k"}).status == 200


def test_it_does_not_take_the_key_from_the_query_string(empty_sim):
    reply = call(empty_sim, "GET", "/sessions?key=k", key=None)
    assert reply.status == 401 and reply.error["details"][0]["reason"] == "CREDENTIALS_MISSING"


def test_it_rejects_an_unknown_key_with_api_key_invalid(empty_sim):
    reply = call(empty_sim, "GET", "/sessions", key="AIzaSy-unknown")
    assert reply.status == 401
    assert reply.error["status"] == "UNAUTHENTICATED"
    assert reply.error["message"] == (
        "API keys are not supported by this API. Expected OAuth2 access token or other "
        "authentication credentials that assert a principal."
    )
    assert reply.error["details"][0]["reason"] == "API_KEY_INVALID"
    assert reply.error["details"][0]["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"


def test_it_shares_an_account_between_its_keys_and_revokes_one(empty_sim):
    sim = empty_sim
    assert admin(sim, "POST", "/accounts", {"id": "team", "keys": ["t1", "t2"]}).status == 200
    made = create(sim, "Shared", key="t1")
    assert call(sim, "GET", f"/sessions/{made['id']}", key="t2").status == 200
    admin(sim, "POST", "/accounts", {"keys": ["t1"], "revoke": True})
    revoked = call(sim, "GET", "/sessions", key="t1")
    assert revoked.status == 401 and revoked.error["details"][0]["reason"] == "API_KEY_INVALID"
    assert call(sim, "GET", f"/sessions/{made['id']}", key="t2").status == 200


def test_it_revokes_a_whole_account(empty_sim):
    admin(empty_sim, "POST", "/accounts", {"id": "gone", "keys": ["g1"]})
    assert call(empty_sim, "GET", "/sessions", key="g1").status == 200
    admin(empty_sim, "POST", "/accounts", {"id": "gone", "revoke": True})
    assert call(empty_sim, "GET", "/sessions", key="g1").status == 401


def test_it_holds_at_most_three_keys_per_account(empty_sim):
    four = admin(empty_sim, "POST", "/accounts", {"id": "big", "keys": ["a", "b", "c", "d"]})
    assert four.status == 400
    assert (
        admin(empty_sim, "POST", "/accounts", {"id": "ok", "keys": ["a", "b", "c"]}).status == 200
    )
    assert admin(empty_sim, "POST", "/accounts", {"id": "ok", "keys": ["d"]}).status == 400


def test_it_keeps_each_accounts_sessions_apart(sim):
    mine = create(sim, "Mine", **repo())
    sid = mine["id"]
    for method, path in [
        ("GET", f"/sessions/{sid}"),
        ("GET", f"/sessions/{sid}/activities"),
        ("POST", f"/sessions/{sid}:archive"),
        ("POST", f"/sessions/{sid}:approvePlan"),
        ("DELETE", f"/sessions/{sid}"),
    ]:
        reply = call(sim, method, path, key="other")
        assert reply.status == 404 and reply.json == NOT_FOUND
    assert call(sim, "GET", "/sessions?filter=" + "archived%20%3D%20true", key="other").json == {}
    assert call(sim, "GET", "/sessions", key="other").json == {}
    assert call(sim, "GET", f"/sessions/{sid}").status == 200
