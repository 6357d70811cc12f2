"""Every scenario, its choice, and the toggles (docs/jules-api.md#odd-paths)."""

from __future__ import annotations

import datetime as dt

import pytest

from jules_simulator import SimulatorConfig, parse_scenario, start_simulator
from tests.unit.simulator.helpers import activities, admin, call, create, get, kinds, repo

WORK = {"progressUpdated", "agentMessaged"}


def _seconds(text):
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _run(sim, prompt, seconds=4000, **fields):
    sid = create(sim, prompt, **fields)["id"]
    sim.advance(seconds)
    return sid, get(sim, sid), activities(sim, sid)


@pytest.mark.parametrize(
    ("tag", "state"),
    [
        ("[sim:happy]", "COMPLETED"),
        ("[sim:failure]", "FAILED"),
        ("[sim:pause]", "PAUSED"),
        ("[sim:stall]", "IN_PROGRESS"),
        ("[sim:question]", "AWAITING_USER_FEEDBACK"),
        ("[sim:question mode=complete]", "COMPLETED"),
        ("[sim:revive delay=60]", "COMPLETED"),
        ("[sim:auto_pr none]", "COMPLETED"),
    ],
)
def test_it_ends_each_scenario_in_its_state(empty_sim, tag, state):
    _, session, _ = _run(empty_sim, f"Task {tag}")
    assert session["state"] == state


def test_it_fails_at_step_k_with_the_reason(empty_sim):
    _, session, items = _run(
        empty_sim, 'Break [sim:failure step=3 reason="No space left on device"]'
    )
    assert session["state"] == "FAILED" and "outputs" not in session
    assert kinds(items)[:2] == ["planGenerated", "planApproved"]
    assert sum(1 for k in kinds(items) if k in WORK) == 3
    assert items[-1]["sessionFailed"] == {"reason": "No space left on device"}
    assert items[-1]["originator"] == "agent"


def test_it_fails_with_a_realistic_reason_by_default(empty_sim):
    _, _, items = _run(empty_sim, "Break [sim:failure step=0]")
    assert kinds(items) == ["planGenerated", "planApproved", "sessionFailed"]
    assert items[-1]["sessionFailed"]["reason"]


def test_it_pauses_without_an_activity_and_resumes_on_a_message(empty_sim):
    sid, session, items = _run(empty_sim, "Wait [sim:pause step=2]")
    assert session["state"] == "PAUSED"
    assert kinds(items)[-1] == "progressUpdated" and session["updateTime"] > items[-1]["createTime"]
    empty_sim.advance(3600)
    assert len(activities(empty_sim, sid)) == len(items)
    assert call(empty_sim, "POST", f"/sessions/{sid}:sendMessage", {"prompt": "Go on"}).json == {}
    assert get(empty_sim, sid)["state"] == "IN_PROGRESS"
    empty_sim.advance(3000)
    resumed = activities(empty_sim, sid)
    assert kinds(resumed)[len(items)] == "userMessaged" and kinds(resumed)[-1] == "sessionCompleted"
    assert get(empty_sim, sid)["state"] == "COMPLETED"


def test_it_resumes_a_pause_by_itself_after_a_duration(empty_sim):
    sid, session, _ = _run(empty_sim, "Wait [sim:pause step=1 duration=10m]", seconds=200)
    assert session["state"] == "PAUSED"
    empty_sim.advance(4000)
    assert get(empty_sim, sid)["state"] == "COMPLETED"


def test_it_stalls_with_no_activity_and_no_change(empty_sim):
    sid, session, items = _run(empty_sim, "Hang [sim:stall step=1]")
    assert session["state"] == "IN_PROGRESS"
    assert sum(1 for k in kinds(items) if k in WORK) == 1
    empty_sim.advance(86_400)
    assert get(empty_sim, sid) == session and len(activities(empty_sim, sid)) == len(items)


def test_it_ends_a_stall_after_its_duration(empty_sim):
    sid, session, _ = _run(empty_sim, "Hang [sim:stall step=1 duration=52m]", seconds=600)
    assert session["state"] == "IN_PROGRESS"
    empty_sim.advance(6000)
    assert get(empty_sim, sid)["state"] == "COMPLETED"


def test_it_asks_and_waits_for_an_answer(empty_sim):
    sid = create(empty_sim, "Ask [sim:question]")["id"]
    empty_sim.advance(150)
    assert get(empty_sim, sid)["state"] == "AWAITING_USER_FEEDBACK"
    question = activities(empty_sim, sid)[-1]
    assert question["agentMessaged"]["agentMessage"].endswith("?")
    empty_sim.advance(86_400)
    assert get(empty_sim, sid)["state"] == "AWAITING_USER_FEEDBACK"


def test_it_completes_with_the_question_unanswered(empty_sim):
    _, session, items = _run(empty_sim, "Ask [sim:question complete wait=2m]")
    assert session["state"] == "COMPLETED"
    assert kinds(items)[-2:] == ["agentMessaged", "sessionCompleted"]
    assert "userMessaged" not in kinds(items)


def test_it_revives_a_completed_session_and_completes_twice(empty_sim):
    sid = create(empty_sim, "Again [sim:revive delay=1h]")["id"]
    empty_sim.advance(1500)
    first = get(empty_sim, sid)
    assert first["state"] == "COMPLETED"
    empty_sim.advance(3600 + 3000)
    items = activities(empty_sim, sid)
    assert kinds(items).count("sessionCompleted") == 2 and kinds(items)[-1] == "sessionCompleted"
    first_done = next(i for i in items if "sessionCompleted" in i)
    resumed = items[items.index(first_done) + 1]
    assert resumed["progressUpdated"]["title"] == "Resumed work"
    gap = _seconds(resumed["createTime"]) - _seconds(first_done["createTime"])
    assert 3599 <= gap <= 3601
    assert get(empty_sim, sid)["updateTime"] > first["updateTime"]


def test_it_times_out_an_unapproved_plan_ten_minutes_after_creation(empty_sim):
    sid = create(empty_sim, "Wait [sim:plan_approval mode=timeout]", requirePlanApproval=True)["id"]
    empty_sim.advance(595)
    assert get(empty_sim, sid)["state"] == "AWAITING_PLAN_APPROVAL"
    empty_sim.advance(10)
    session = get(empty_sim, sid)
    assert session["state"] == "COMPLETED" and "outputs" not in session
    assert kinds(activities(empty_sim, sid)) == ["planGenerated"]
    # The live service answered approvePlan with {} here; by default nothing moves.
    assert call(empty_sim, "POST", f"/sessions/{sid}:approvePlan").json == {}
    empty_sim.advance(3000)
    assert get(empty_sim, sid)["state"] == "COMPLETED"
    assert kinds(activities(empty_sim, sid)) == ["planGenerated"]


def test_it_resumes_a_timed_out_plan_on_approval_when_asked(empty_sim):
    sid = create(empty_sim, "Wait [sim:plan_approval timeout resume=1]", requirePlanApproval=True)[
        "id"
    ]
    empty_sim.advance(700)
    assert call(empty_sim, "POST", f"/sessions/{sid}:approvePlan").json == {}
    assert get(empty_sim, sid)["state"] == "IN_PROGRESS"
    empty_sim.advance(3000)
    assert kinds(activities(empty_sim, sid))[:2] == ["planGenerated", "planApproved"]
    assert get(empty_sim, sid)["outputs"]


@pytest.mark.parametrize(
    ("option", "outputs"),
    [("pr", {"changeSet", "pullRequest"}), ("changeset_only", {"changeSet"}), ("none", set())],
)
def test_it_completes_with_the_outputs_auto_pr_asks_for(empty_sim, option, outputs):
    _, session, items = _run(
        empty_sim, f"Ship [sim:auto_pr {option}]", automationMode="AUTO_CREATE_PR", **repo()
    )
    assert {k for o in session.get("outputs", []) for k in o} == outputs
    assert bool(items[-1].get("artifacts")) is (option != "none")


def test_it_chooses_the_scenario_by_header_then_tag_then_queue_then_default():
    config = SimulatorConfig(default_scenario="failure step=0")
    with start_simulator(api_keys=["k"], manual_clock=True, config=config) as sim:
        by_header = call(
            sim,
            "POST",
            "/sessions",
            {"prompt": "x [sim:stall]"},
            headers={"X-Sim-Scenario": "pause step=1"},
        ).json["id"]
        by_tag = create(sim, "x [sim:stall step=1]")["id"]
        admin(sim, "POST", "/scenarios", {"scenarios": ["question"]})
        by_queue = create(sim, "x")["id"]
        by_default = create(sim, "x")["id"]
        sim.advance(4000)
        states = [get(sim, i)["state"] for i in (by_header, by_tag, by_queue, by_default)]
        assert states == ["PAUSED", "IN_PROGRESS", "AWAITING_USER_FEEDBACK", "FAILED"]
        origin = admin(sim, "GET", f"/sessions/{by_queue}").json["scenario"]["origin"]
        assert origin == "queue"


@pytest.mark.parametrize(
    "prompt",
    [
        "x [sim:explode]",
        "x [sim:failure step=two]",
        "x [sim:happy colour=red]",
        "x [sim:question mode=sometimes]",
    ],
)
def test_it_rejects_an_unknown_scenario_or_option(empty_sim, prompt):
    reply = call(empty_sim, "POST", "/sessions", {"prompt": prompt})
    assert reply.status == 400 and "scenario" in reply.error["message"]


def _artifact_kinds(items):
    return {k for i in items for a in i.get("artifacts", []) for k in a}


def test_it_leaves_bash_media_unknown_kinds_and_revisions_off_by_default(empty_sim):
    _, _, items = _run(empty_sim, "Plain", **repo())
    assert _artifact_kinds(items) == {"changeSet"}
    assert "other" not in kinds(items) and kinds(items).count("planGenerated") == 1


def test_it_adds_bash_output_with_exit_codes_when_toggled(empty_sim):
    _, _, items = _run(empty_sim, "Test it [sim:happy bash]")
    runs = [i for i in items if any("bashOutput" in a for a in i.get("artifacts", []))]
    assert runs and all(i["progressUpdated"]["title"] == "Ran bash command" for i in runs)
    outputs = [i["artifacts"][0]["bashOutput"] for i in runs]
    assert outputs[0]["command"] == "pytest -q" and outputs[0]["exitCode"] == 1
    assert any("exitCode" not in o for o in outputs) and all(o["output"] for o in outputs)


def test_it_adds_media_unknown_kinds_and_plan_revisions_when_toggled(empty_sim):
    _, _, items = _run(empty_sim, "UI [sim:happy media unknown revisions]")
    media = [a["media"] for i in items for a in i.get("artifacts", []) if "media" in a]
    assert media == [{"data": media[0]["data"], "mimeType": "image/png"}] and media[0]["data"]
    tool = next(i for i in items if "toolCalled" in i)
    assert tool["description"] == "Searched the code" and "hologram" in tool["artifacts"][0]
    kindless = [
        i for i in items if set(i) == {"name", "id", "createTime", "originator", "description"}
    ]
    assert len(kindless) == 1 and kindless[0]["originator"] == "system"
    plans = [i["planGenerated"]["plan"]["id"] for i in items if "planGenerated" in i]
    assert len(plans) == 2 and plans[0] != plans[1]


def test_it_drops_progress_titles_when_toggled(empty_sim):
    _, _, items = _run(empty_sim, "Quiet [sim:happy empty_titles=1]")
    progress = [i["progressUpdated"] for i in items if "progressUpdated" in i]
    assert progress and all("title" not in p and p["description"] for p in progress)


def test_it_parses_the_tag_grammar():
    parsed = parse_scenario('failure step=4 reason="No space left, sorry" bash media=0 pace=1m')
    assert (parsed.name, parsed.step, parsed.reason) == ("failure", 4, "No space left, sorry")
    assert parsed.bash is True and parsed.media is False and parsed.pace == 60
    assert parse_scenario("plan_approval timeout resume=yes").mode == "timeout"
    assert parse_scenario("plan_approval timeout resume=yes").resume is True
    assert parse_scenario("auto_pr changeset_only").pr == "changeset_only"
    assert parse_scenario("revive delay=2h").delay == 7200
    assert parse_scenario("question").step == 1 and parse_scenario("pause").step == 2
    for bad in ("", "nope", "stall duration=soon", "auto_pr maybe", "happy steps=0"):
        with pytest.raises(ValueError):
            parse_scenario(bad)
