"""Pin the simulator's observable behaviour to the spec, in raw HTTP, so it cannot drift."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest

from sessions_app.jules.simulator import start_simulator
from sessions_app.jules.simulator.http import MISSING_KEY_BODY

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture
def sim():
    simulator = start_simulator(
        api_keys=["k"], manual_clock=True, seed=9, seed_sessions=60, activities_per_session=6
    )
    yield simulator
    simulator.stop()


def call(sim, method, path, body=None, key="k", headers=None):
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(f"{sim.base_url}{path}", data=data, method=method)
    if key is not None:
        request.add_header("x-goog-api-key", key)  # header names are case-insensitive
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}"), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}"), dict(error.headers)


def test_it_answers_the_exact_missing_key_body(sim):
    status, body, _ = call(sim, "GET", "/sessions", key=None)
    assert status == 401 and body == MISSING_KEY_BODY


def test_it_answers_unknown_keys_with_api_key_invalid(sim):
    status, body, _ = call(sim, "GET", "/sessions", key="nope")
    assert status == 401
    assert body["error"]["message"].startswith("API keys are not supported by this API")
    assert body["error"]["details"][0]["reason"] == "API_KEY_INVALID"


def test_it_routes_colon_verbs_only(sim):
    _, created, _ = call(sim, "POST", "/sessions", {"prompt": "x"})
    sid = created["id"]
    assert call(sim, "POST", f"/sessions/{sid}/approvePlan", {})[0] == 404
    assert call(sim, "GET", f"/sessions/{sid}:archive")[0] == 404
    assert call(sim, "PATCH", f"/sessions/{sid}", {})[0] == 404
    assert call(sim, "GET", "/scheduledSessions")[0] == 404
    assert call(sim, "POST", f"/sessions/{sid}:archive", {})[0] == 200


def test_it_writes_proto3_json(sim):
    _, created, headers = call(sim, "POST", "/sessions", {"prompt": "Fix it"})
    assert headers["Content-Type"] == "application/json; charset=UTF-8"
    assert created["state"] == "QUEUED" and created["createTime"] == created["updateTime"]
    assert TIME.match(created["createTime"])
    assert "archived" not in created and "outputs" not in created and "sourceContext" not in created
    assert re.fullmatch(r"\d{19,20}", created["id"])
    sim.advance(3000)
    _, page, _ = call(sim, "GET", f"/sessions/{created['id']}/activities")
    ids = [a["id"] for a in page["activities"]]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    plan = page["activities"][0]["planGenerated"]["plan"]
    assert "index" not in plan["steps"][0] and plan["steps"][1]["index"] == 1
    times = [a["createTime"] for a in page["activities"]]
    assert times == sorted(times) and len(set(times)) == len(times)


def test_it_validates_create(sim):
    assert call(sim, "POST", "/sessions", b"{not json")[0] == 400
    assert call(sim, "POST", "/sessions", {"session": {"prompt": "x"}})[0] == 400
    assert call(sim, "POST", "/sessions", {"title": "no prompt"})[0] == 400
    assert call(sim, "POST", "/sessions", {"prompt": "x", "automationMode": "ALWAYS"})[0] == 400
    no_branch = {
        "prompt": "x",
        "sourceContext": {"source": "sources/github/acme/web", "githubRepoContext": {}},
    }
    assert call(sim, "POST", "/sessions", no_branch)[0] == 400
    unknown = {
        "prompt": "x",
        "sourceContext": {
            "source": "sources/github/a/b",
            "githubRepoContext": {"startingBranch": "m"},
        },
    }
    assert call(sim, "POST", "/sessions", unknown)[0] == 404


def test_it_paginates_per_the_spec(sim):
    assert len(call(sim, "GET", "/sessions")[1]["sessions"]) == 30
    _status, body, _ = call(
        sim,
        "GET",
        "/sessions?pageSize=500&filter=archived%20%3D%20true%20OR%20archived%20%3D%20false",
    )
    assert len(body["sessions"]) == 60 and "nextPageToken" not in body
    assert call(sim, "GET", "/sessions?pageSize=-1")[0] == 400
    assert call(sim, "GET", "/sessions?pageToken=garbage")[0] == 400
    _, first, _ = call(sim, "GET", "/sessions?pageSize=10")
    # A session created between pages does not shift the next page (keyset cursors).
    call(sim, "POST", "/sessions", {"prompt": "new"})
    _, second, _ = call(sim, "GET", f"/sessions?pageSize=10&pageToken={first['nextPageToken']}")
    firsts = {s["id"] for s in first["sessions"]}
    assert not firsts & {s["id"] for s in second["sessions"]}


def test_it_parses_the_filters_strictly(sim):
    assert call(sim, "GET", "/sessions?filter=state%20%3D%20COMPLETED")[0] == 400
    status, body, _ = call(sim, "GET", "/sessions?filter=archived%3Dtrue&pageSize=100")
    assert status == 200 and all(s.get("archived") for s in body.get("sessions", []))
    sid = body["sessions"][0]["id"]
    assert call(sim, "GET", f"/sessions/{sid}/activities?createTime=2026-01-01T00:00:00Z")[0] == 400
    _, everything, _ = call(sim, "GET", f"/sessions/{sid}/activities")
    pivot = everything["activities"][1]["createTime"]
    _, newer, _ = call(sim, "GET", f"/sessions/{sid}/activities?filter=create_time%3E%22{pivot}%22")
    assert [a["id"] for a in newer["activities"]] == [a["id"] for a in everything["activities"][2:]]
    assert call(sim, "GET", f"/sessions/{sid}/activities?filter=bogus")[0] == 400
    _, sources, _ = call(sim, "GET", "/sources?filter=name%3Dsources%2Fgithub%2Facme%2Fweb")
    assert [s["name"] for s in sources["sources"]] == ["sources/github/acme/web"]


def test_it_serves_activities_404_only_right_after_create(sim):
    _, created, _ = call(sim, "POST", "/sessions", {"prompt": "x"})
    assert call(sim, "GET", f"/sessions/{created['id']}/activities")[0] == 404
    sim.advance(5)
    assert call(sim, "GET", f"/sessions/{created['id']}/activities")[0] == 200


@pytest.mark.parametrize(
    ("tag", "state"),
    [
        ("[sim:happy]", "COMPLETED"),
        ("[sim:failure step=1]", "FAILED"),
        ("[sim:pause step=1]", "PAUSED"),
        ("[sim:stall step=1]", "IN_PROGRESS"),
        ("[sim:question]", "AWAITING_USER_FEEDBACK"),
        ("[sim:question mode=complete]", "COMPLETED"),
    ],
)
def test_it_plays_each_scenario(sim, tag, state):
    _, created, _ = call(sim, "POST", "/sessions", {"prompt": f"Task {tag}"})
    sim.advance(4000)
    assert call(sim, "GET", f"/sessions/{created['id']}")[1]["state"] == state


def test_it_times_out_an_unapproved_plan(sim):
    body = {"prompt": "Wait [sim:plan_approval mode=timeout]", "requirePlanApproval": True}
    _, created, _ = call(sim, "POST", "/sessions", body)
    sim.advance(700)
    session = call(sim, "GET", f"/sessions/{created['id']}")[1]
    assert session["state"] == "COMPLETED" and "outputs" not in session
    assert call(sim, "POST", f"/sessions/{created['id']}:approvePlan", {})[0] == 200


def test_it_revives_a_completed_session(sim):
    _, created, _ = call(sim, "POST", "/sessions", {"prompt": "Again [sim:revive delay=100]"})
    sim.advance(3000)
    _, page, _ = call(sim, "GET", f"/sessions/{created['id']}/activities?pageSize=100")
    assert [a for a in page["activities"] if "sessionCompleted" in a].__len__() == 2


def test_it_is_deterministic_for_a_seed():
    def snapshot():
        s = start_simulator(api_keys=["k"], manual_clock=True, seed=4, seed_sessions=20)
        try:
            account = s.state.account("k")
            return sorted((x.id, x.state, len(x.activities)) for x in account.sessions.values())
        finally:
            s.stop()

    assert snapshot() == snapshot()


def test_it_seeds_ten_thousand_sessions_fast():
    import time

    started = time.perf_counter()
    s = start_simulator(
        api_keys=["k"], manual_clock=True, seed_sessions=10_000, activities_per_session=10
    )
    try:
        assert len(s.state.account("k").sessions) == 10_000
    finally:
        s.stop()
    assert time.perf_counter() - started < 30


def test_it_counts_requests_with_keys_redacted(sim):
    call(sim, "GET", "/sessions")
    call(sim, "GET", "/sessions", key="secret-key-xyz")
    with urllib.request.urlopen(f"{sim.admin_url}/requests", timeout=5) as response:
        raw = response.read().decode()
    counts = json.loads(raw)["counts"]
    assert counts["sessions.list"] == 1 and counts["unauthenticated"] == 1
    assert "secret-key-xyz" not in raw
