"""approvePlan, sendMessage, archive, unarchive and delete (docs/jules-api.md#operations)."""

from __future__ import annotations

import pytest

from jules_simulator import SimulatorConfig, start_simulator
from tests.unit.simulator.helpers import NOT_FOUND, activities, call, create, get, kinds, repo


def _approve(sim, sid):
    return call(sim, "POST", f"/sessions/{sid}:approvePlan")


def _say(sim, sid, text="Toward zero, please."):
    return call(sim, "POST", f"/sessions/{sid}:sendMessage", {"prompt": text})


def test_it_approves_the_latest_plan(empty_sim):
    sid = create(empty_sim, "Plan first", requirePlanApproval=True)["id"]
    empty_sim.advance(70)
    reply = _approve(empty_sim, sid)
    assert reply.status == 200 and reply.raw == b"{}"
    plan, approval = activities(empty_sim, sid)
    assert approval["planApproved"]["planId"] == plan["planGenerated"]["plan"]["id"]
    assert approval["originator"] == "user" and get(empty_sim, sid)["state"] == "IN_PROGRESS"


@pytest.mark.parametrize(
    ("seconds", "prompt"),
    [
        (0, "Queued"),
        (30, "Planning"),
        (200, "Working"),
        (3000, "Done"),
        (200, "Stuck [sim:question]"),
    ],
)
def test_it_refuses_approval_outside_awaiting_plan_approval(empty_sim, seconds, prompt):
    sid = create(empty_sim, prompt)["id"]
    empty_sim.advance(seconds)
    reply = _approve(empty_sim, sid)
    assert reply.status == 400 and reply.error["status"] == "FAILED_PRECONDITION"
    assert [a.kind for a in empty_sim.state.session(sid).activities].count("planApproved") <= 1


def test_it_refuses_a_second_approval(empty_sim):
    sid = create(empty_sim, "Plan first", requirePlanApproval=True)["id"]
    empty_sim.advance(70)
    assert _approve(empty_sim, sid).status == 200
    assert _approve(empty_sim, sid).error["status"] == "FAILED_PRECONDITION"


def test_it_answers_a_question_and_goes_back_to_work(empty_sim):
    sid = create(empty_sim, "Ask [sim:question]")["id"]
    empty_sim.advance(150)
    assert _say(empty_sim, sid).json == {}
    last = activities(empty_sim, sid)[-1]
    assert last["userMessaged"] == {"userMessage": "Toward zero, please."}
    assert last["originator"] == "user" and get(empty_sim, sid)["state"] == "IN_PROGRESS"
    empty_sim.advance(60)
    after = kinds(activities(empty_sim, sid))
    assert after[after.index("userMessaged") + 1] == "agentMessaged"  # the acknowledgement
    empty_sim.advance(3000)
    assert get(empty_sim, sid)["state"] == "COMPLETED"


def test_it_revises_the_plan_on_feedback_while_awaiting_approval(empty_sim):
    sid = create(empty_sim, "Plan first", requirePlanApproval=True)["id"]
    empty_sim.advance(70)
    _say(empty_sim, sid, "Add a step for the docs.")
    empty_sim.advance(40)
    items = activities(empty_sim, sid)
    assert kinds(items) == ["planGenerated", "userMessaged", "planGenerated"]
    assert get(empty_sim, sid)["state"] == "AWAITING_PLAN_APPROVAL"
    _approve(empty_sim, sid)
    approved = activities(empty_sim, sid)[-1]["planApproved"]["planId"]
    assert (
        approved
        == items[2]["planGenerated"]["plan"]["id"]
        != items[0]["planGenerated"]["plan"]["id"]
    )


def test_it_steers_a_session_in_progress(empty_sim):
    sid = create(empty_sim, "Work")["id"]
    empty_sim.advance(100)
    _say(empty_sim, sid, "Please also log the retries.")
    assert get(empty_sim, sid)["state"] == "IN_PROGRESS"
    empty_sim.advance(40)
    after = kinds(activities(empty_sim, sid))
    assert after[after.index("userMessaged") + 1] == "agentMessaged"


def test_it_records_a_message_while_queued_or_planning(empty_sim):
    sid = create(empty_sim, "Work")["id"]
    _say(empty_sim, sid, "Use pytest.")
    empty_sim.advance(30)
    _say(empty_sim, sid, "And ruff.")
    assert kinds(activities(empty_sim, sid)) == ["userMessaged", "userMessaged"]
    assert get(empty_sim, sid)["state"] == "PLANNING"


def test_it_revives_a_completed_session_on_a_message(empty_sim):
    sid = create(empty_sim, "Work")["id"]
    empty_sim.advance(3000)
    assert _say(empty_sim, sid, "One more thing").json == {}
    assert get(empty_sim, sid)["state"] == "IN_PROGRESS"
    empty_sim.advance(3000)
    assert get(empty_sim, sid)["state"] == "COMPLETED"
    assert kinds(activities(empty_sim, sid)).count("sessionCompleted") == 2


def test_it_refuses_a_message_to_a_failed_session(empty_sim):
    sid = create(empty_sim, "Break [sim:failure step=0]")["id"]
    empty_sim.advance(3000)
    before = activities(empty_sim, sid)
    reply = _say(empty_sim, sid)
    assert reply.status == 400 and reply.error["status"] == "FAILED_PRECONDITION"
    assert reply.error["message"] == "Session is not active."
    assert activities(empty_sim, sid) == before


def test_it_revives_a_failed_session_when_configured():
    config = SimulatorConfig(failed_send_revives=True)
    with start_simulator(api_keys=["k"], manual_clock=True, config=config) as sim:
        sid = create(sim, "Break [sim:failure step=0]")["id"]
        sim.advance(3000)
        assert _say(sim, sid, "Try again").json == {}
        sim.advance(3000)
        assert get(sim, sid)["state"] == "COMPLETED"


def test_it_archives_and_unarchives_idempotently(sim):
    sid = create(sim)["id"]
    for _ in range(2):
        reply = call(sim, "POST", f"/sessions/{sid}:archive", {})
        assert reply.status == 200 and reply.raw == b"{}"
    assert get(sim, sid)["archived"] is True
    listed = call(sim, "GET", "/sessions?pageSize=100").json["sessions"]
    assert sid not in {s["id"] for s in listed}
    for _ in range(2):
        assert call(sim, "POST", f"/sessions/{sid}:unarchive").raw == b"{}"
    assert "archived" not in get(sim, sid)
    assert call(sim, "GET", "/sessions?pageSize=1").json["sessions"][0]["id"] == sid


def test_it_answers_archive_with_the_session_when_configured():
    config = SimulatorConfig(archive_returns_session=True)
    with start_simulator(api_keys=["k"], manual_clock=True, config=config) as sim:
        sid = create(sim)["id"]
        archived = call(sim, "POST", f"/sessions/{sid}:archive", {}).json
        assert archived["id"] == sid and archived["archived"] is True
        assert "archived" not in call(sim, "POST", f"/sessions/{sid}:unarchive", {}).json


def test_it_deletes_a_session_with_its_activities(empty_sim):
    sid = create(empty_sim)["id"]
    empty_sim.advance(200)
    activity = activities(empty_sim, sid)[0]["id"]
    assert call(empty_sim, "DELETE", f"/sessions/{sid}").raw == b"{}"
    for method, path in [
        ("GET", f"/sessions/{sid}"),
        ("GET", f"/sessions/{sid}/activities"),
        ("GET", f"/sessions/{sid}/activities/{activity}"),
        ("POST", f"/sessions/{sid}:sendMessage"),
        ("DELETE", f"/sessions/{sid}"),
    ]:
        reply = call(empty_sim, method, path, {"prompt": "x"} if "send" in path else None)
        assert reply.status == 404 and reply.json == NOT_FOUND
    assert call(empty_sim, "GET", "/sessions").json == {}
    assert empty_sim.state.session(sid) is None


def test_it_answers_404_for_an_unknown_activity(sim):
    sid = call(sim, "GET", "/sessions").json["sessions"][0]["id"]
    assert call(sim, "GET", f"/sessions/{sid}/activities/{'0' * 32}").json == NOT_FOUND


def test_it_keeps_an_archived_session_readable_and_moving(empty_sim):
    sid = create(empty_sim, "Work", **repo())["id"]
    call(empty_sim, "POST", f"/sessions/{sid}:archive")
    empty_sim.advance(3000)
    session = get(empty_sim, sid)
    assert session["archived"] is True and session["state"] == "COMPLETED"
