"""Contract: the eight session operations of the client against the simulator."""

from __future__ import annotations

import pytest

from jules import errors
from jules.client import JulesClient
from jules_simulator import SimulatorConfig, start_simulator
from tests.contract.conftest import OTHER_KEY, SEEDED


def test_it_creates_a_session_and_reads_it_back(client):
    created = client.create_session(
        prompt="Add unit tests for invoice rounding",
        source="github/acme/billing",
        starting_branch="release-2026.03",
        title="Invoice rounding tests",
        require_plan_approval=True,
        automation_mode="AUTO_CREATE_PR",
    )
    assert created.state == "QUEUED"
    assert created.id.isdigit() and 19 <= len(created.id) <= 20
    assert created.name == f"sessions/{created.id}"
    assert created.create_time is not None and created.create_time == created.update_time
    assert created.url == f"https://jules.google.com/session/{created.id}"
    fetched = client.get_session(created.name)
    assert fetched.id == created.id
    assert fetched.source == "sources/github/acme/billing"
    assert fetched.starting_branch == "release-2026.03"
    assert fetched.title == "Invoice rounding tests"
    assert fetched.prompt == "Add unit tests for invoice rounding"
    assert fetched.require_plan_approval is True and fetched.automation_mode == "AUTO_CREATE_PR"
    assert fetched.archived is False and fetched.outputs == []


def test_it_creates_a_repoless_session_with_a_generated_title(client):
    session = client.create_session(prompt="Explain closures in Python")
    assert session.source == "" and "sourceContext" not in session.raw
    assert session.title and session.state == "QUEUED"


def test_it_lists_sessions_newest_first(sim, client):
    newest = client.create_session(prompt="the newest")
    page = client.list_sessions()
    assert page.items[0].id == newest.id
    times = [s.create_time for s in page.items]
    assert times == sorted(times, reverse=True)


def test_it_lists_the_default_page_size_of_30(client):
    page = client.list_sessions(archived=None)
    assert len(page.items) == 30 and page.next_page_token


def test_it_clamps_the_page_size_at_100_and_omits_the_last_token(client):
    first = client.list_sessions(page_size=1000, archived=None)
    assert len(first.items) == 100 and first.next_page_token
    last = client.list_sessions(page_size=100, page_token=first.next_page_token, archived=None)
    assert len(last.items) == SEEDED - 100 and last.next_page_token is None
    assert not {s.id for s in first.items} & {s.id for s in last.items}


def test_it_iterates_every_session_exactly_once(client):
    everything = list(client.iter_sessions(page_size=17, archived=None))
    assert len(everything) == SEEDED == len({s.id for s in everything})
    assert client.request_count == -(-SEEDED // 17)


def test_it_filters_by_archived(client):
    active = list(client.iter_sessions())
    archived = list(client.iter_sessions(archived=True))
    both = list(client.iter_sessions(archived=None))
    assert archived and all(s.archived for s in archived)
    assert active and not any(s.archived for s in active)
    assert {s.id for s in both} == {s.id for s in active} | {s.id for s in archived}


def test_it_archives_and_unarchives_idempotently(client):
    session = client.create_session(prompt="archive me")
    assert client.archive_session(session.id) is None
    assert client.archive_session(session.id) is None
    assert client.get_session(session.id).archived is True  # archived stays readable
    assert session.id not in {s.id for s in client.iter_sessions()}
    assert session.id in {s.id for s in client.iter_sessions(archived=True)}
    assert client.unarchive_session(session.name) is None
    assert client.unarchive_session(session.name) is None
    assert client.get_session(session.id).archived is False


def test_it_accepts_the_session_that_archive_may_return():
    with start_simulator(
        api_keys=["k"], manual_clock=True, config=SimulatorConfig(archive_returns_session=True)
    ) as simulator:
        client = JulesClient("k", simulator.base_url)
        session = client.create_session(prompt="x")
        archived = client.archive_session(session.id)
        assert archived is not None and archived.id == session.id and archived.archived
        unarchived = client.unarchive_session(session.id)
        assert unarchived is not None and unarchived.archived is False


def test_it_reads_back_the_partial_answer_of_a_create():
    config = SimulatorConfig(partial_create_response=True)
    with start_simulator(api_keys=["k"], manual_clock=True, config=config) as simulator:
        client = JulesClient("k", simulator.base_url)
        session = client.create_session(
            prompt="x", source="github/acme/api", starting_branch="main"
        )
        assert session.state == "QUEUED" and session.url and session.create_time is not None
        assert client.request_count == 2  # the create, then a GET for the full session


def test_it_deletes_a_session_and_everything_under_it(sim, client):
    session = client.create_session(prompt="delete me")
    sim.advance(200)
    assert list(client.iter_activities(session.id))
    client.delete_session(session.id)
    with pytest.raises(errors.NotFoundError):
        client.get_session(session.id)
    with pytest.raises(errors.NotFoundError):
        client.list_activities(session.id)
    with pytest.raises(errors.NotFoundError):
        client.delete_session(session.id)


def test_it_approves_a_plan(sim, client):
    session = client.create_session(
        prompt="Plan first [sim:plan_approval]",
        source="sources/github/acme/web",
        starting_branch="main",
        require_plan_approval=True,
    )
    sim.advance(70)
    assert client.get_session(session.id).state == "AWAITING_PLAN_APPROVAL"
    assert client.get_session(session.id).needs_user
    client.approve_plan(session.id)
    assert client.get_session(session.id).state == "IN_PROGRESS"
    approved = list(client.iter_activities(session.id))[-1]
    assert approved.kind == "planApproved" and approved.originator == "user"
    with pytest.raises(errors.FailedPreconditionError):
        client.approve_plan(session.id)


def test_it_answers_a_question_and_the_session_completes(sim, client):
    session = client.create_session(prompt="Ask me [sim:question]")
    sim.advance(150)  # queued 5 s, planning 60 s, approval 2 s, two steps of 26 s
    assert client.get_session(session.id).state == "AWAITING_USER_FEEDBACK"
    client.send_message(session.id, "Yes, toward zero.")
    reply = list(client.iter_activities(session.id))[-1]
    assert reply.kind == "userMessaged" and reply.user_message == "Yes, toward zero."
    assert reply.originator == "user"
    assert client.get_session(session.id).state == "IN_PROGRESS"
    sim.advance(2000)
    done = client.get_session(session.id)
    assert done.state == "COMPLETED" and done.is_terminal


def test_it_revives_a_completed_session_with_a_message(sim, client):
    session = client.create_session(prompt="Work")
    sim.advance(2000)
    assert client.get_session(session.id).state == "COMPLETED"
    client.send_message(session.id, "One more thing")
    assert client.get_session(session.id).state == "IN_PROGRESS"


def test_it_completes_with_a_pull_request_under_auto_create_pr(sim, client):
    session = client.create_session(
        prompt="Ship it",
        source="github/acme/billing",
        starting_branch="main",
        automation_mode="AUTO_CREATE_PR",
    )
    sim.advance(2000)
    done = client.get_session(session.id)
    assert done.state == "COMPLETED"
    pr = done.pull_request
    change_set = done.change_set
    assert pr is not None and pr.number is not None and pr.url.endswith(f"/pull/{pr.number}")
    assert pr.base_ref == "main" and pr.head_ref.startswith("jules/")
    assert change_set is not None and len(change_set.base_commit_id) == 40
    assert done.working_branch.startswith("jules/")


def test_it_completes_with_only_a_change_set_without_automation(sim, client):
    session = client.create_session(
        prompt="Patch", source="github/acme/api", starting_branch="main"
    )
    sim.advance(2000)
    done = client.get_session(session.id)
    assert done.pull_request is None and done.change_set is not None


def test_it_keeps_accounts_apart(sim, client, make_client):
    mine = client.create_session(prompt="mine")
    other = make_client(OTHER_KEY)
    with pytest.raises(errors.NotFoundError):
        other.get_session(mine.id)
    with pytest.raises(errors.NotFoundError):
        other.archive_session(mine.id)
    assert list(other.iter_sessions(archived=None)) == []
