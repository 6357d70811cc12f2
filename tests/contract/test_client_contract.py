"""Contract tests: the client against the simulator over real HTTP on loopback.

Every one of the 12 operations, every activity kind, pagination edges, filters and every
error class. These tests need no database.
"""

from __future__ import annotations

import logging

import pytest

from sessions_app.jules import errors
from sessions_app.jules.client import JulesClient
from sessions_app.jules.simulator import SimulatorConfig, start_simulator


@pytest.fixture
def sim():
    simulator = start_simulator(
        api_keys=["key-a", "key-b"],
        manual_clock=True,
        seed=3,
        seed_sessions=130,
        activities_per_session=8,
    )
    yield simulator
    simulator.stop()


@pytest.fixture
def client(sim):
    return JulesClient("key-a", sim.base_url, backoff_base=0.01, backoff_cap=0.05, retry_budget=5)


def _run(sim, client, prompt, seconds=2000, **kwargs):
    session = client.create_session(prompt=prompt, **kwargs)
    sim.advance(seconds)
    return client.get_session(session.id)


def test_it_creates_and_reads_a_session(client):
    created = client.create_session(
        prompt="Add tests",
        source="github/acme/billing",
        starting_branch="main",
        title="T",
        require_plan_approval=True,
        automation_mode="AUTO_CREATE_PR",
    )
    assert created.state == "QUEUED" and created.id.isdigit() and len(created.id) >= 19
    assert created.create_time == created.update_time
    assert created.url == f"https://jules.google.com/session/{created.id}"
    fetched = client.get_session(f"sessions/{created.id}")
    assert fetched.source == "sources/github/acme/billing" and fetched.starting_branch == "main"
    assert fetched.require_plan_approval is True and fetched.title == "T"


def test_it_creates_a_repoless_session(client):
    session = client.create_session(prompt="Explain closures")
    assert session.source == "" and "sourceContext" not in session.raw


def test_it_lists_sessions_newest_first_across_pages(client):
    page = client.list_sessions(page_size=50)
    assert len(page.items) == 50 and page.next_page_token
    everything = list(client.iter_sessions(page_size=50, archived=None))
    assert len(everything) == 130
    times = [s.create_time for s in everything]
    assert times == sorted(times, reverse=True)
    assert len({s.id for s in everything}) == 130


def test_it_clamps_page_size_and_omits_the_last_token(client):
    page = client.list_sessions(page_size=1000, archived=None)
    assert len(page.items) == 100
    last = client.list_sessions(page_size=100, page_token=page.next_page_token, archived=None)
    assert len(last.items) == 30 and last.next_page_token is None
    assert len(client.list_sessions().items) == 30  # the default page size


def test_it_filters_archived_sessions(client):
    active = list(client.iter_sessions(archived=False))
    archived = list(client.iter_sessions(archived=True))
    assert archived and all(s.archived for s in archived)
    assert not any(s.archived for s in active)
    assert len(active) + len(archived) == 130


def test_it_archives_and_unarchives_idempotently(client):
    session = client.create_session(prompt="x")
    assert client.archive_session(session.id) is None
    assert client.archive_session(session.id) is None
    assert client.get_session(session.id).archived is True
    client.unarchive_session(session.id)
    assert client.get_session(session.id).archived is False


def test_it_accepts_a_session_from_archive(sim):
    simulator = start_simulator(
        api_keys=["k"], manual_clock=True, config=SimulatorConfig(archive_returns_session=True)
    )
    try:
        c = JulesClient("k", simulator.base_url)
        session = c.create_session(prompt="x")
        returned = c.archive_session(session.id)
        assert returned is not None and returned.archived is True
    finally:
        simulator.stop()


def test_it_deletes_a_session(client):
    session = client.create_session(prompt="x")
    client.delete_session(session.id)
    with pytest.raises(errors.NotFoundError):
        client.get_session(session.id)


def test_it_walks_the_plan_approval_and_question_path(sim, client):
    session = client.create_session(
        prompt="Do it [sim:question]",
        require_plan_approval=True,
        source="github/acme/web",
        starting_branch="main",
        automation_mode="AUTO_CREATE_PR",
    )
    with pytest.raises(errors.NotFoundError):
        client.list_activities(session.id)
    sim.advance(70)
    assert client.get_session(session.id).state == "AWAITING_PLAN_APPROVAL"
    client.approve_plan(f"sessions/{session.id}")
    with pytest.raises(errors.FailedPreconditionError):
        client.approve_plan(session.id)  # no longer awaiting approval
    sim.advance(60)
    assert client.get_session(session.id).state == "AWAITING_USER_FEEDBACK"
    client.send_message(session.id, "Yes.")
    sim.advance(2000)
    done = client.get_session(session.id)
    assert done.state == "COMPLETED"
    kinds = [a.kind for a in client.iter_activities(session.id)]
    assert (
        kinds[0] == "planGenerated"
        and kinds[1] == "planApproved"
        and kinds[-1] == "sessionCompleted"
    )
    assert {"agentMessaged", "userMessaged", "progressUpdated"} <= set(kinds)
    activities = list(client.iter_activities(session.id))
    plan = activities[0].plan
    assert plan is not None and plan.steps[0].index == 0 and plan.steps[1].index == 1
    assert activities[1].originator == "user" and activities[1].approved_plan_id == plan.id
    completed = activities[-1]
    assert completed.artifacts[0].kind == "changeSet"
    assert len(completed.artifacts[0].change_set.base_commit_id) == 40
    pr = next(o.pull_request for o in done.outputs if o.pull_request)
    assert pr.number is not None and pr.base_ref == "main" and pr.head_ref.startswith("jules/")
    one = client.get_activity(session.id, activities[2].id)
    assert one.id == activities[2].id


def test_it_reads_activities_incrementally(sim, client):
    session = _run(sim, client, "Work", seconds=600)
    everything = list(client.iter_activities(session.id, page_size=2))
    assert len(everything) >= 5
    pivot = everything[2]
    newer = list(client.iter_activities(session.id, create_time_after=pivot.create_time_raw))
    assert [a.id for a in newer] == [a.id for a in everything[3:]]


def test_it_reports_a_failure_reason(sim, client):
    session = _run(
        sim, client, 'Break [sim:failure step=1 reason="Unable to install dependencies"]'
    )
    assert session.state == "FAILED"
    last = list(client.iter_activities(session.id))[-1]
    assert last.kind == "sessionFailed" and last.failure_reason == "Unable to install dependencies"
    with pytest.raises(errors.FailedPreconditionError):
        client.send_message(session.id, "Try again")


def test_it_lists_and_gets_sources(client):
    sources = list(client.iter_sources(page_size=3))
    assert len(sources) == 8
    billing = client.get_source("github/acme/billing")
    assert billing.default_branch == "main" and "release-2026.03" in billing.branches
    assert client.get_source("sources/github/acme/billing").name == billing.name
    page = client.list_sources(names=["sources/github/acme/web", "github/acme/api"])
    assert {s.name for s in page.items} == {"sources/github/acme/web", "sources/github/acme/api"}
    with pytest.raises(errors.NotFoundError):
        client.get_source("github/acme/nope")


def test_it_maps_auth_errors_and_keeps_the_key_secret(sim, caplog):
    with pytest.raises(errors.AuthError) as missing:
        JulesClient("", sim.base_url).list_sessions()
    assert missing.value.reason == "CREDENTIALS_MISSING"
    secret = "sk-very-secret-000"
    bad = JulesClient(secret, sim.base_url)
    with caplog.at_level(logging.DEBUG), pytest.raises(errors.AuthError) as invalid:
        bad.list_sessions()
    assert invalid.value.reason == "API_KEY_INVALID"
    assert secret not in str(invalid.value) and secret not in repr(bad)
    assert secret not in caplog.text


def test_it_isolates_accounts(sim, client):
    mine = client.create_session(prompt="mine")
    other = JulesClient("key-b", sim.base_url)
    with pytest.raises(errors.NotFoundError):
        other.get_session(mine.id)
    assert list(other.iter_sessions()) == []


def test_it_maps_invalid_arguments(sim, client):
    with pytest.raises(errors.InvalidArgumentError):
        client.create_session(prompt="   ")
    with pytest.raises(errors.InvalidArgumentError):
        client.create_session(prompt="x", automation_mode="SOMETIMES")
    with pytest.raises(errors.NotFoundError):
        client.create_session(prompt="x", source="github/acme/unknown", starting_branch="main")
    with pytest.raises(errors.InvalidArgumentError):
        client.list_sessions(page_token="forged-token")


def test_it_retries_rate_limits_and_server_errors(sim, client):
    sim.add_fault("kind=status,status=429,retry_after=0,first=2")
    sim.add_fault("kind=status,status=503,first=1")
    assert len(client.list_sessions().items) == 30
    assert sim.request_counts()["fault.status"] == 3


def test_it_gives_up_within_the_budget(sim):
    sim.add_fault("kind=status,status=500")
    impatient = JulesClient(
        "key-a", sim.base_url, backoff_base=0.01, backoff_cap=0.02, retry_budget=0.2
    )
    with pytest.raises(errors.TransientServerError) as failure:
        impatient.list_sessions()
    assert failure.value.status == 500


def test_it_rejects_and_retries_malformed_bodies(sim, client):
    sim.add_fault("kind=malformed,first=1")
    sim.add_fault("kind=truncate,first=1")
    assert client.list_sessions().items
    sim.clear_faults()
    sim.add_fault("kind=malformed")
    with pytest.raises(errors.MalformedResponseError):
        JulesClient("key-a", sim.base_url, retry_budget=0.05, backoff_base=0.01).list_sessions()


def test_it_does_not_retry_a_create_after_an_ambiguous_failure(sim, client):
    sim.add_fault("kind=status,status=500,method=POST,first=1")
    with pytest.raises(errors.TransientServerError):
        client.create_session(prompt="once")
    assert sim.request_counts().get("sessions.create", 0) == 0
    sim.add_fault("kind=status,status=429,method=POST,first=1")
    assert client.create_session(prompt="after a 429").state == "QUEUED"


def test_it_parses_every_artifact_kind_and_unknown_kinds(sim, client):
    session = _run(sim, client, "Verify the UI [sim:happy bash=1 media=1 unknown=1 empty_titles=1]")
    activities = list(client.iter_activities(session.id))
    kinds = {a.kind for a in activities}
    artifact_kinds = {art.kind for a in activities for art in a.artifacts}
    assert "unknown" in kinds
    assert {"bashOutput", "media", "changeSet", "unknown"} <= artifact_kinds
    unknown = next(a for a in activities if a.kind == "unknown")
    assert unknown.description == "Searched the code" and "toolCalled" in unknown.raw
    media = next(art for a in activities for art in a.artifacts if art.kind == "media")
    assert media.media.mime_type == "image/png" and media.media.data
