"""proto3 JSON, id and time shapes, the create answer (docs/jules-api.md#json-conventions)."""

from __future__ import annotations

import pytest

from jules_simulator import SimulatorConfig, start_simulator
from tests.unit.simulator.helpers import (
    HEX32,
    SESSION_ID,
    TIME,
    activities,
    call,
    create,
    get,
    repo,
)


def test_it_answers_json_in_utf8_without_rate_limit_headers(empty_sim):
    reply = call(empty_sim, "GET", "/sessions")
    assert reply.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert not any(h.lower().startswith(("x-ratelimit", "retry-after")) for h in reply.headers)


def test_it_answers_create_with_the_full_queued_session(empty_sim):
    session = create(
        empty_sim,
        "Add unit tests for invoice rounding [sim:happy]",
        requirePlanApproval=True,
        automationMode="AUTO_CREATE_PR",
        **repo(branch="release-2026.03"),
    )
    assert session["state"] == "QUEUED"
    assert session["createTime"] == session["updateTime"]
    assert session["name"] == f"sessions/{session['id']}"
    assert session["url"] == f"https://jules.google.com/session/{session['id']}"
    assert session["title"] == "Add unit tests for invoice rounding"  # generated, tag left out
    assert session["prompt"] == "Add unit tests for invoice rounding [sim:happy]"
    assert session["sourceContext"] == {
        "source": "sources/github/acme/billing",
        "githubRepoContext": {"startingBranch": "release-2026.03"},
    }
    assert session["requirePlanApproval"] is True
    assert session["automationMode"] == "AUTO_CREATE_PR"
    assert "outputs" not in session and "archived" not in session
    assert get(empty_sim, session["id"]) == session


def test_it_keeps_a_given_title_and_allows_repoless_sessions(empty_sim):
    session = create(empty_sim, "Explain closures", title="Closures")
    assert session["title"] == "Closures" and "sourceContext" not in session


def test_it_omits_input_fields_at_their_default(empty_sim):
    session = create(
        empty_sim, "x", requirePlanApproval=False, automationMode="AUTOMATION_MODE_UNSPECIFIED"
    )
    assert "requirePlanApproval" not in session and "automationMode" not in session


def test_it_answers_the_guides_partial_create_shape_when_configured():
    config = SimulatorConfig(partial_create_response=True)
    with start_simulator(api_keys=["k"], manual_clock=True, config=config) as sim:
        session = create(sim, "Fix it", **repo())
        assert set(session) == {"name", "id", "title", "sourceContext", "prompt"}
        assert get(sim, session["id"])["state"] == "QUEUED"


def test_it_writes_session_ids_of_19_or_20_digits_beyond_2_to_the_53(empty_sim):
    ids = [create(empty_sim, f"Task {n}")["id"] for n in range(30)]
    assert all(SESSION_ID.match(i) for i in ids)
    assert all(int(i) > 2**53 for i in ids) and {len(i) for i in ids} <= {19, 20}


def _finished(sim, prompt="Fix the CSV export [sim:happy bash=1]", **fields):
    session = create(sim, prompt, **fields)
    sim.advance(3000)
    return get(sim, session["id"]), activities(sim, session["id"])


def test_it_writes_32_hex_ids_and_microsecond_utc_times(empty_sim):
    session, items = _finished(empty_sim, **repo())
    assert TIME.match(session["createTime"]) and TIME.match(session["updateTime"])
    plan = items[0]["planGenerated"]["plan"]
    assert HEX32.match(plan["id"]) and TIME.match(plan["createTime"])
    assert all(HEX32.match(step["id"]) for step in plan["steps"])
    for item in items:
        assert HEX32.match(item["id"]) and TIME.match(item["createTime"])
        assert item["name"] == f"sessions/{session['id']}/activities/{item['id']}"
    # Not every time may end in zeros: live data carries six real digits.
    assert len({item["createTime"][-7:] for item in items}) > len(items) // 2


def test_it_omits_proto3_defaults(empty_sim):
    session, items = _finished(empty_sim, **repo())
    steps = items[0]["planGenerated"]["plan"]["steps"]
    assert "index" not in steps[0] and [s.get("index", 0) for s in steps] == list(range(len(steps)))
    bash = [
        a["bashOutput"] for item in items for a in item.get("artifacts", []) if "bashOutput" in a
    ]
    assert any("exitCode" not in b for b in bash)  # exit code 0 is omitted
    assert all(b.get("exitCode", 1) != 0 for b in bash)
    assert items[-1]["sessionCompleted"] == {}
    assert "archived" not in session
    assert "artifacts" not in items[1]  # planApproved carries none, so the key is absent


def test_it_answers_an_empty_list_as_an_empty_object(empty_sim):
    assert call(empty_sim, "GET", "/sessions").json == {}
    session = create(empty_sim)
    empty_sim.advance(10)
    assert call(empty_sim, "GET", f"/sessions/{session['id']}/activities").raw == b"{}"


def test_it_adds_outputs_only_once_produced(empty_sim):
    session = create(empty_sim, "Ship it", automationMode="AUTO_CREATE_PR", **repo())
    empty_sim.advance(200)
    assert "outputs" not in get(empty_sim, session["id"])
    empty_sim.advance(3000)
    assert get(empty_sim, session["id"])["outputs"]


def test_it_shows_archived_only_when_true(empty_sim):
    sid = create(empty_sim)["id"]
    call(empty_sim, "POST", f"/sessions/{sid}:archive", {})
    assert get(empty_sim, sid)["archived"] is True
    call(empty_sim, "POST", f"/sessions/{sid}:unarchive", {})
    assert "archived" not in get(empty_sim, sid)


@pytest.mark.parametrize(
    ("source", "private"), [("github/acme/billing", True), ("github/globex/search", False)]
)
def test_it_writes_sources_in_the_sdk_name_form(empty_sim, source, private):
    data = call(empty_sim, "GET", f"/sources/{source}").json
    owner, name = source.split("/")[1:]
    assert data["name"] == f"sources/{source}" and data["id"] == source
    github = data["githubRepo"]
    assert (github["owner"], github["repo"]) == (owner, name)
    assert github.get("isPrivate", False) is private  # false is omitted
    assert github["defaultBranch"]["displayName"] == github["branches"][0]["displayName"]
