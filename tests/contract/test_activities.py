"""Contract: activities.list and activities.get, every activity and artifact kind."""

from __future__ import annotations

import pytest

from jules import errors


def _finished(sim, client, prompt, seconds=2000, **options):
    session = client.create_session(prompt=prompt, **options)
    sim.advance(seconds)
    return client.get_session(session.id)


def test_it_reads_every_kind_of_a_full_session(sim, client):
    session = client.create_session(
        prompt="Do it [sim:question]",
        source="github/acme/web",
        starting_branch="main",
        require_plan_approval=True,
    )
    sim.advance(70)
    client.approve_plan(session.id)
    sim.advance(60)
    client.send_message(session.id, "Yes.")
    sim.advance(2000)
    activities = list(client.iter_activities(session.id))
    kinds = [a.kind for a in activities]
    assert kinds[:2] == ["planGenerated", "planApproved"] and kinds[-1] == "sessionCompleted"
    assert {"progressUpdated", "agentMessaged", "userMessaged"} <= set(kinds)
    plan_activity, approval = activities[0], activities[1]
    plan = plan_activity.plan
    assert plan is not None and len(plan.id) == 32 and plan.steps
    assert [s.index for s in plan.steps] == list(range(len(plan.steps)))
    assert plan_activity.originator == "agent" and plan_activity.description == "Plan generated"
    assert approval.approved_plan_id == plan.id and approval.originator == "user"
    question = next(a for a in activities if a.kind == "agentMessaged")
    assert question.agent_message.endswith("?")
    progress = next(a for a in activities if a.kind == "progressUpdated")
    assert progress.progress_title and progress.progress_description
    completed = activities[-1]
    (artifact,) = completed.artifacts
    assert artifact.kind == "changeSet" and artifact.change_set is not None
    assert artifact.change_set.unidiff_patch.startswith("diff --git")
    assert len(artifact.change_set.base_commit_id) == 40
    assert all(a.session_id == session.id and len(a.id) == 32 for a in activities)


def test_it_reads_a_failure_reason(sim, client):
    session = _finished(sim, client, '[sim:failure step=1 reason="Unable to install dependencies"]')
    assert session.state == "FAILED"
    last = list(client.iter_activities(session.id))[-1]
    assert last.kind == "sessionFailed" and last.failure_reason == "Unable to install dependencies"


def test_it_reads_bash_media_and_unknown_kinds(sim, client):
    session = _finished(sim, client, "Verify [sim:happy bash=1 media=1 unknown=1 empty_titles=1]")
    activities = list(client.iter_activities(session.id))
    unknown = next(a for a in activities if a.kind == "unknown")
    assert unknown.description == "Searched the code" and "toolCalled" in unknown.raw
    artifacts = {art.kind: art for a in activities for art in a.artifacts}
    assert set(artifacts) == {"bashOutput", "media", "changeSet", "unknown"}
    bash = artifacts["bashOutput"].bash_output
    assert bash is not None and bash.command == "pytest -q" and bash.exit_code == 0
    media = artifacts["media"].media
    assert media is not None and media.mime_type == "image/png" and media.data
    assert artifacts["unknown"].raw == {"hologram": {"frames": 3}}


def test_it_reads_progress_without_a_title(sim, client):
    session = _finished(sim, client, "Quiet [sim:happy empty_titles=1]")
    progress = [a for a in client.iter_activities(session.id) if a.kind == "progressUpdated"]
    assert progress and all(a.progress_title == "" for a in progress)
    assert all(a.progress_description for a in progress)


def test_it_lists_activities_oldest_first_across_pages(sim, client):
    session = _finished(sim, client, "Work")
    everything = list(client.iter_activities(session.id, page_size=2))
    assert len(everything) >= 5
    times = [a.create_time for a in everything]
    assert times == sorted(times) and len(set(times)) == len(times)
    first = client.list_activities(session.id, page_size=2)
    assert [a.id for a in first.items] == [a.id for a in everything[:2]]
    assert first.next_page_token
    last = client.list_activities(session.id, page_size=len(everything))
    assert len(last.items) == len(everything) and last.next_page_token is None


def test_it_reads_only_activities_after_the_pivot(sim, client):
    session = _finished(sim, client, "Work", seconds=600)
    everything = list(client.iter_activities(session.id))
    pivot = everything[2]
    newer = list(client.iter_activities(session.id, create_time_after=pivot.create_time_raw))
    assert [a.id for a in newer] == [a.id for a in everything[3:]]
    # The filter is exclusive and compares times, not strings: the pivot itself is out.
    assert (
        list(client.iter_activities(session.id, create_time_after=everything[-1].create_time_raw))
        == []
    )
    assert pivot.create_time is not None
    again = client.list_activities(session.id, create_time_after=pivot.create_time)
    assert [a.id for a in again.items] == [a.id for a in everything[3:]]


def test_it_picks_up_new_activities_incrementally(sim, client):
    session = client.create_session(prompt="Work")
    sim.advance(100)
    seen = list(client.iter_activities(session.id))
    pivot = seen[-1].create_time_raw
    sim.advance(2000)
    newer = list(client.iter_activities(session.id, create_time_after=pivot))
    assert newer and newer[-1].kind == "sessionCompleted"
    assert not {a.id for a in seen} & {a.id for a in newer}


def test_it_gets_one_activity_by_id_and_by_name(sim, client):
    session = _finished(sim, client, "Work")
    listed = list(client.iter_activities(session.id))[3]
    by_id = client.get_activity(session.id, listed.id)
    by_name = client.get_activity(session.id, listed.name)
    assert by_id.raw == by_name.raw == listed.raw
    with pytest.raises(errors.NotFoundError):
        client.get_activity(session.id, "0" * 32)


def test_it_waits_out_the_404_of_a_just_created_session(sim, make_client):
    # Each wait moves the simulator's clock, as real time would move the service's.
    client = make_client(sleep=sim.advance)
    session = client.create_session(prompt="Just made")
    with pytest.raises(errors.NotFoundError):
        client.list_activities(session.id)
    page = client.list_activities(session.id, retry_not_found=5)
    assert page.items == [] and page.next_page_token is None


def test_it_retries_an_injected_activities_404(sim, client, waits):
    session = _finished(sim, client, "Work")
    sim.add_fault("kind=activities404,first=2")
    activities = list(client.iter_activities(session.id, retry_not_found=3))
    assert activities and waits.seconds == [1.0, 2.0]
