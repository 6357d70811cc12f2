"""Contract: every error class the simulator can produce, and the client's retries of them."""

from __future__ import annotations

import logging

import pytest

from jules import errors
from tests.contract.conftest import KEY, OTHER_KEY, wait_for_count

MISSING_KEY_MESSAGE = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential."
)

# --- 401 ---------------------------------------------------------------------------------


def test_it_reports_a_missing_key(make_client):
    with pytest.raises(errors.AuthError) as failure:
        make_client("").list_sessions()
    error = failure.value
    assert (error.status, error.rpc_status, error.reason) == (
        401,
        "UNAUTHENTICATED",
        "CREDENTIALS_MISSING",
    )
    assert error.message == MISSING_KEY_MESSAGE and not error.retryable


def test_it_reports_an_unknown_key_without_revealing_it(make_client, caplog):
    secret = "AIzaSy-contract-unknown-0001"
    client = make_client(secret)
    with caplog.at_level(logging.DEBUG), pytest.raises(errors.AuthError) as failure:
        client.get_session("1")
    assert failure.value.reason == "API_KEY_INVALID"
    assert failure.value.message.startswith("API keys are not supported by this API")
    assert secret not in str(failure.value) and secret not in repr(failure.value)
    assert secret not in repr(client) and secret not in caplog.text


def test_it_reports_a_revoked_key(sim, make_client):
    client = make_client(OTHER_KEY)
    assert client.list_sessions().items == []
    sim.revoke(OTHER_KEY)
    with pytest.raises(errors.AuthError):
        client.list_sessions()
    assert make_client(KEY).list_sessions().items  # the other account is untouched


# --- 404 and 400 -------------------------------------------------------------------------


def test_it_reports_unknown_sessions(client):
    with pytest.raises(errors.NotFoundError) as failure:
        client.get_session("12345678901234567890")
    assert failure.value.rpc_status == "NOT_FOUND" and failure.value.status == 404
    for call in (
        lambda: client.approve_plan("12345678901234567890"),
        lambda: client.send_message("12345678901234567890", "hi"),
        lambda: client.archive_session("12345678901234567890"),
        lambda: client.list_activities("12345678901234567890"),
    ):
        with pytest.raises(errors.NotFoundError):
            call()


@pytest.mark.parametrize(
    "options",
    [
        {"prompt": "   "},
        {"prompt": "x", "automation_mode": "SOMETIMES"},
        {"prompt": "x", "source": "github/acme/billing"},  # no startingBranch
    ],
)
def test_it_reports_invalid_creates(sim, client, options):
    with pytest.raises(errors.InvalidArgumentError) as failure:
        client.create_session(**options)
    assert failure.value.rpc_status == "INVALID_ARGUMENT"
    assert sim.counts().get("sessions.create", 0) == 0
    assert client.request_count == 1  # a 400 is final


def test_it_reports_an_unknown_source_on_create(client):
    with pytest.raises(errors.NotFoundError):
        client.create_session(prompt="x", source="github/acme/unknown", starting_branch="main")


def test_it_reports_invalid_list_arguments(client):
    with pytest.raises(errors.InvalidArgumentError):
        client.list_sessions(page_token="forged-token")
    with pytest.raises(errors.InvalidArgumentError):
        client.list_sessions(page_size=-1)
    with pytest.raises(errors.InvalidArgumentError):
        client.list_activities(next(client.iter_sessions()).id, create_time_after="yesterday")
    with pytest.raises(errors.InvalidArgumentError):
        client.send_message(next(client.iter_sessions()).id, "  ")


def test_it_reports_a_failed_precondition(sim, client):
    session = client.create_session(prompt='[sim:failure step=0 reason="No disk"]')
    sim.advance(2000)
    with pytest.raises(errors.FailedPreconditionError) as failure:
        client.send_message(session.id, "Try again")
    assert failure.value.rpc_status == "FAILED_PRECONDITION" and failure.value.status == 400
    assert not isinstance(failure.value, errors.InvalidArgumentError)
    with pytest.raises(errors.FailedPreconditionError):
        client.approve_plan(session.id)


def test_it_reports_permission_denied_without_retrying(sim, client):
    sim.add_fault("kind=status,status=403,first=1")
    with pytest.raises(errors.PermissionDeniedError) as failure:
        client.list_sessions()
    assert failure.value.status == 403 and failure.value.rpc_status == "PERMISSION_DENIED"
    assert client.request_count == 1


# --- 429 and 5xx through fault injection -------------------------------------------------


def test_it_waits_the_retry_after_seconds_of_a_429(sim, client, waits):
    sim.add_fault("kind=status,status=429,retry_after=3,first=1")
    assert len(client.list_sessions().items) == 30
    assert len(waits.seconds) == 1 and waits.seconds[0] >= 3.0
    assert sim.counts()["fault.status"] == 1


def test_it_waits_until_the_retry_after_date_of_a_429(sim, client, waits):
    sim.add_fault("kind=status,status=429,retry_after=6,retry_after_date=1,first=1")
    client.list_sessions()
    assert len(waits.seconds) == 1 and 3.0 <= waits.seconds[0] <= 6.0


def test_it_retries_a_429_without_retry_after(sim, client, waits):
    sim.add_fault("kind=status,status=429,first=2")
    client.list_sources()
    assert len(waits.seconds) == 2 and all(0 <= w <= 2.0 for w in waits.seconds)


def test_it_gives_up_on_a_429_that_outlasts_the_budget(sim, make_client):
    sim.add_fault("kind=status,status=429,retry_after=120")
    with pytest.raises(errors.RateLimitedError) as failure:
        make_client(retry_budget=60).list_sessions()
    assert failure.value.retry_after == 120 and failure.value.rpc_status == "RESOURCE_EXHAUSTED"
    assert sim.counts()["fault.status"] == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_it_retries_server_errors(sim, client, status):
    sim.add_fault(f"kind=status,status={status},first=2")
    assert len(client.list_sessions().items) == 30
    assert client.request_count == 3


@pytest.mark.parametrize(
    ("status", "rpc"), [(500, "INTERNAL"), (502, None), (504, "DEADLINE_EXCEEDED")]
)
def test_it_gives_up_on_lasting_server_errors(sim, make_client, status, rpc):
    sim.add_fault(f"kind=status,status={status}")
    client = make_client(max_retries=3)
    with pytest.raises(errors.TransientServerError) as failure:
        client.get_session("1")
    assert failure.value.status == status and failure.value.rpc_status == rpc
    assert "<html" not in str(failure.value)  # the 502 is an HTML page
    assert client.request_count == 4


def test_it_does_not_resend_a_create_after_a_500(sim, client):
    sim.add_fault("kind=status,status=500,method=POST,path=^/sessions$,first=1")
    with pytest.raises(errors.TransientServerError):
        client.create_session(prompt="once")
    assert client.request_count == 1


def test_it_resends_a_create_after_a_503_and_a_429(sim, client):
    sim.add_fault("kind=status,status=503,method=POST,first=1")
    sim.add_fault("kind=status,status=429,method=POST,first=1")
    assert client.create_session(prompt="after refusals").state == "QUEUED"
    assert sim.counts()["sessions.create"] == 1 and client.request_count == 3


def test_it_does_not_resend_a_create_that_failed_after_taking_effect(sim, client):
    # stage=after: the simulator creates the session, then answers 500.
    sim.add_fault("kind=status,status=500,method=POST,path=^/sessions$,stage=after,first=1")
    with pytest.raises(errors.TransientServerError):
        client.create_session(prompt="exactly once")
    assert client.request_count == 1 and sim.counts()["sessions.create"] == 1
    assert [s.prompt for s in client.list_sessions(page_size=1).items] == ["exactly once"]


def test_it_resends_a_create_refused_by_quota_but_never_duplicates(sim, make_client):
    sim.add_account("quota-account", "quota-key", daily_cap=1)
    client = make_client("quota-key", retry_budget=5.0, backoff_base=0.01, backoff_cap=0.02)
    client.create_session(prompt="the one allowed today")
    with pytest.raises(errors.RateLimitedError) as failure:
        client.create_session(prompt="one too many")
    assert failure.value.rpc_status == "RESOURCE_EXHAUSTED"
    assert failure.value.reason == "DAILY_SESSION_LIMIT"
    assert client.request_count == 2 + client.max_retries  # a 429 surely did nothing
    assert [s.prompt for s in client.iter_sessions()] == ["the one allowed today"]


def test_it_does_not_resend_a_create_that_timed_out(sim, make_client):
    # The simulator answers late but still creates the session: exactly the ambiguity
    # that forbids resending.
    sim.add_fault("kind=latency,seconds=1,method=POST,first=1")
    client = make_client(read_timeout=0.3)
    with pytest.raises(errors.TransientServerError) as failure:
        client.create_session(prompt="slow")
    assert failure.value.status is None and not failure.value.not_applied
    assert client.request_count == 1
    assert wait_for_count(sim, "sessions.create", 1) == 1


def test_it_retries_a_read_that_timed_out(sim, make_client):
    sim.add_fault("kind=latency,seconds=1,first=1")
    client = make_client(read_timeout=0.3)
    assert client.list_sources().items
    assert client.request_count == 2


def test_it_retries_a_read_after_a_connection_reset(sim, client):
    sim.add_fault("kind=reset,first=1")
    assert client.list_sources().items and client.request_count == 2


def test_it_does_not_resend_a_create_after_a_connection_reset(sim, client):
    sim.add_fault("kind=reset,method=POST,first=1")
    with pytest.raises(errors.TransientServerError):
        client.create_session(prompt="once")
    assert client.request_count == 1


# --- malformed and empty bodies ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["malformed", "truncate"])
def test_it_rereads_one_malformed_answer(sim, client, kind):
    sim.add_fault(f"kind={kind},first=1")
    assert len(client.list_sessions().items) == 30
    assert client.request_count == 2


def test_it_reports_a_lasting_malformed_answer(sim, client):
    sim.add_fault("kind=malformed")
    with pytest.raises(errors.MalformedResponseError) as failure:
        client.list_sessions()
    assert failure.value.status == 200
    assert sim.counts()["fault.malformed"] == 3  # one read and two re-reads


def test_it_reads_an_empty_answer_as_an_empty_object(sim, client):
    sim.add_fault("kind=empty,path=^/sessions$,first=1")
    page = client.list_sessions()
    assert page.items == [] and page.next_page_token is None
    sim.add_fault("kind=empty,path=:archive$")
    assert client.archive_session(next(client.iter_sessions()).id) is None
    assert sim.counts()["fault.empty"] == 2
