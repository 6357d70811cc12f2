"""The state machine on a manual virtual clock (docs/jules-api.md#lifecycle)."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import statistics

from jules_simulator import start_simulator
from tests.unit.simulator.helpers import activities, call, create, get, kinds, repo


def _time(text):
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_it_walks_queued_planning_plan_approval_work_and_completion(empty_sim):
    sim = empty_sim
    session = create(sim, "Fix the CSV export", **repo())
    sid = session["id"]
    sim.advance(2)
    assert get(sim, sid)["state"] == "QUEUED"
    sim.advance(8)  # queued lasts a few seconds, with no activity yet
    assert get(sim, sid)["state"] == "PLANNING" and activities(sim, sid) == []
    sim.advance(62)  # planning ~1 min, then the plan and its automatic approval ~2 s later
    items = activities(sim, sid)
    assert kinds(items) == ["planGenerated", "planApproved"]
    plan, approval = items[0], items[1]
    assert plan["originator"] == "agent" and approval["originator"] == "user"
    assert approval["planApproved"]["planId"] == plan["planGenerated"]["plan"]["id"]
    assert 1.5 <= (_time(approval["createTime"]) - _time(plan["createTime"])).total_seconds() <= 2.5
    assert len(plan["planGenerated"]["plan"]["steps"]) >= 3
    assert get(sim, sid)["state"] == "IN_PROGRESS"
    sim.advance(3000)
    done = get(sim, sid)
    items = activities(sim, sid)
    assert done["state"] == "COMPLETED"
    assert kinds(items)[-1] == "sessionCompleted" and "sessionCompleted" not in kinds(items)[:-1]
    assert {"progressUpdated", "agentMessaged"} <= set(kinds(items))
    assert any(i.get("progressUpdated", {}).get("title") == "Ran bash command" for i in items)
    (artifact,) = items[-1]["artifacts"]
    patch = artifact["changeSet"]["gitPatch"]
    assert artifact["changeSet"]["source"] == "sources/github/acme/billing"
    assert patch["unidiffPatch"].startswith("diff --git a/") and "\n@@ -" in patch["unidiffPatch"]
    assert re.fullmatch(r"[0-9a-f]{40}", patch["baseCommitId"]) and patch["suggestedCommitMessage"]
    # Without AUTO_CREATE_PR the outputs hold the change set only.
    assert done["outputs"] == [{"changeSet": artifact["changeSet"]}]
    assert done["updateTime"] == items[-1]["createTime"]


def test_it_writes_a_unified_diff_whose_hunk_counts_add_up(empty_sim):
    sid = create(empty_sim, "Fix the CSV export", **repo())["id"]
    empty_sim.advance(3000)
    patch = activities(empty_sim, sid)[-1]["artifacts"][0]["changeSet"]["gitPatch"]["unidiffPatch"]
    lines = patch.splitlines()
    for index, line in enumerate(lines):
        match = re.match(r"^@@ -\d+,(\d+) \+\d+,(\d+) @@", line)
        if match:
            body = []
            for following in lines[index + 1 :]:
                if following.startswith(("diff --git", "@@")):
                    break
                body.append(following)
            old = sum(1 for b in body if b[:1] in (" ", "-"))
            new = sum(1 for b in body if b[:1] in (" ", "+"))
            assert (old, new) == (int(match.group(1)), int(match.group(2)))


def test_it_paces_work_about_26_seconds_apart(empty_sim):
    sid = create(empty_sim, "Fix the CSV export")["id"]
    empty_sim.advance(3000)
    times = [_time(i["createTime"]) for i in activities(empty_sim, sid)[2:]]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert 18 <= statistics.median(gaps) <= 32 and max(gaps) < 40


def test_it_keeps_times_ascending_and_bumps_update_time_on_every_change(empty_sim):
    sim = empty_sim
    sid = create(sim, "Fix the CSV export [sim:question]", requirePlanApproval=True)["id"]
    seen = [get(sim, sid)]
    for _ in range(40):
        sim.advance(9)
        current = get(sim, sid)
        if current["state"] == "AWAITING_PLAN_APPROVAL":
            call(sim, "POST", f"/sessions/{sid}:approvePlan")
        if current["state"] == "AWAITING_USER_FEEDBACK":
            call(sim, "POST", f"/sessions/{sid}:sendMessage", {"prompt": "Toward zero."})
        seen.append(get(sim, sid))
    updates = [_time(s["updateTime"]) for s in seen]
    assert updates == sorted(updates)
    for before, after in itertools.pairwise(seen):
        if before["state"] != after["state"]:
            assert after["updateTime"] > before["updateTime"]
    items = activities(sim, sid)
    times = [_time(i["createTime"]) for i in items]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert all(_time(i["createTime"]) <= _time(seen[-1]["updateTime"]) for i in items)


def test_it_bumps_update_time_on_archive_even_without_a_clock_move(empty_sim):
    session = create(empty_sim)
    call(empty_sim, "POST", f"/sessions/{session['id']}:archive", {})
    assert get(empty_sim, session["id"])["updateTime"] > session["updateTime"]


def test_it_opens_a_pull_request_under_auto_create_pr(empty_sim):
    sid = create(
        empty_sim, "Ship it", automationMode="AUTO_CREATE_PR", **repo(branch="release-2026.03")
    )["id"]
    empty_sim.advance(3000)
    done = get(empty_sim, sid)
    (pr,) = [o["pullRequest"] for o in done["outputs"] if "pullRequest" in o]
    (change_set,) = [o["changeSet"] for o in done["outputs"] if "changeSet" in o]
    assert re.fullmatch(r"https://github\.com/acme/billing/pull/\d+", pr["url"])
    assert pr["title"] == done["title"] and pr["description"]
    assert pr["baseRef"] == "release-2026.03"
    assert pr["headRef"] == done["sourceContext"]["workingBranch"] and pr["headRef"].startswith(
        "jules/"
    )
    assert change_set["gitPatch"]["baseCommitId"]


def test_it_never_opens_a_pull_request_for_a_repoless_session(empty_sim):
    sid = create(empty_sim, "Write a script", automationMode="AUTO_CREATE_PR")["id"]
    empty_sim.advance(3000)
    outputs = get(empty_sim, sid)["outputs"]
    assert [list(o) for o in outputs] == [["changeSet"]] and "source" not in outputs[0]["changeSet"]


def test_it_waits_for_plan_approval_when_asked(empty_sim):
    sid = create(empty_sim, "Plan first", requirePlanApproval=True)["id"]
    empty_sim.advance(70)
    assert get(empty_sim, sid)["state"] == "AWAITING_PLAN_APPROVAL"
    empty_sim.advance(3600)
    assert get(empty_sim, sid)["state"] == "AWAITING_PLAN_APPROVAL"
    assert kinds(activities(empty_sim, sid)) == ["planGenerated"]


def test_it_answers_activities_404_only_right_after_create(empty_sim):
    sid = create(empty_sim)["id"]
    reply = call(empty_sim, "GET", f"/sessions/{sid}/activities")
    assert reply.status == 404 and reply.error["status"] == "NOT_FOUND"
    empty_sim.advance(2)
    assert call(empty_sim, "GET", f"/sessions/{sid}/activities").status == 404
    empty_sim.advance(2)
    assert call(empty_sim, "GET", f"/sessions/{sid}/activities").raw == b"{}"


def test_it_never_answers_activities_404_once_there_is_an_activity(empty_sim):
    sid = create(empty_sim)["id"]
    call(empty_sim, "POST", f"/sessions/{sid}:sendMessage", {"prompt": "Use pytest."})
    reply = call(empty_sim, "GET", f"/sessions/{sid}/activities")
    assert reply.status == 200 and kinds(reply.json["activities"]) == ["userMessaged"]


def _script(seed):
    with start_simulator(api_keys=["k"], manual_clock=True, seed=seed) as sim:
        ids = [
            create(sim, "Fix it [sim:question]", requirePlanApproval=True, **repo())["id"],
            create(
                sim,
                "Ship it",
                automationMode="AUTO_CREATE_PR",
                **repo("sources/github/globex/ledger"),
            )["id"],
        ]
        sim.advance(70)
        call(sim, "POST", f"/sessions/{ids[0]}:approvePlan")
        sim.advance(60)
        call(sim, "POST", f"/sessions/{ids[0]}:sendMessage", {"prompt": "Yes"})
        sim.advance(3000)
        return [call(sim, "GET", "/sessions").raw] + [
            call(sim, "GET", f"/sessions/{i}/activities").raw for i in ids
        ]


def test_it_gives_the_same_json_for_the_same_seed_and_requests():
    assert _script(5) == _script(5)
    assert _script(5) != _script(6)
