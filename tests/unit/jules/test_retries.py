"""Which failures the client retries, how long, and when it stops (docs/jules-api.md#retries)."""

from __future__ import annotations

import logging
import random
import socket
import time
from email.utils import formatdate

import pytest
import requests
import urllib3.exceptions

from jules import errors
from jules.client import MALFORMED_RETRIES, JulesClient
from tests.unit.jules import spec_examples
from tests.unit.jules.conftest import Reply

QUEUED = {"name": "sessions/1", "id": "1", "state": "QUEUED"}


class CeilingRandom(random.Random):
    """Jitter pinned to its upper bound, so the exponential ceilings become visible."""

    def uniform(self, a: float, b: float) -> float:
        return b


class RaisingHttp:
    """A stand-in `requests.Session` that fails every request with the given errors."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    def request(self, *args, **kwargs):
        self.calls += 1
        raise self.failures[min(self.calls, len(self.failures)) - 1]


def _refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1alpha"


def _refused() -> requests.exceptions.ConnectionError:
    reason = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection")  # type: ignore[arg-type]
    return requests.exceptions.ConnectionError(
        urllib3.exceptions.MaxRetryError(None, "/v1alpha/sessions", reason)  # type: ignore[arg-type]
    )


# --- what is retried ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_it_retries_rate_limits_and_server_errors(server, client, fake_time, status):
    server.queue(Reply(status, b"<html>busy</html>"), Reply(200, {"sessions": [QUEUED]}))
    assert [s.id for s in client.list_sessions().items] == ["1"]
    assert len(server.seen) == 2 and len(fake_time.sleeps) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 501])
def test_it_never_retries_client_errors_or_501(server, client, fake_time, status):
    server.answer(lambda seen: Reply(status, b""))
    with pytest.raises(errors.JulesError) as failure:
        client.get_session("1")
    assert failure.value.status == status
    assert len(server.seen) == 1 and fake_time.sleeps == []


def test_it_retries_a_read_after_a_read_timeout(server, make_client):
    client = make_client(read_timeout=0.2)
    server.queue(Reply(200, QUEUED, delay=1.0), Reply(200, QUEUED))
    assert client.get_session("1").state == "QUEUED"
    assert client.request_count == 2


def test_it_retries_a_read_after_a_dropped_connection(server, client):
    server.queue(Reply(drop=True), Reply(200, QUEUED))
    assert client.get_session("1").id == "1"
    assert client.request_count == 2


def test_it_retries_idempotent_writes_after_ambiguous_failures(server, client):
    server.queue(Reply(500), Reply(502), Reply(200, {}))
    client.archive_session("1")
    server.queue(Reply(504), Reply(200, {}))
    client.approve_plan("1")
    assert client.request_count == 5


# --- create and sendMessage --------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 504])
def test_it_does_not_resend_a_create_after_an_ambiguous_server_error(server, client, status):
    server.queue(Reply(status))
    with pytest.raises(errors.TransientServerError):
        client.create_session(prompt="once")
    assert len(server.seen) == 1


def test_it_does_not_resend_a_create_after_a_read_timeout(server, make_client):
    client = make_client(read_timeout=0.2)
    server.queue(Reply(200, QUEUED, delay=1.0))
    with pytest.raises(errors.TransientServerError) as failure:
        client.create_session(prompt="once")
    assert failure.value.status is None and not failure.value.not_applied
    assert client.request_count == 1 and len(server.seen) == 1


def test_it_does_not_resend_a_create_after_a_dropped_connection(server, client):
    server.queue(Reply(drop=True), Reply(200, QUEUED))
    with pytest.raises(errors.TransientServerError):
        client.create_session(prompt="once")
    assert len(server.seen) == 1


def test_it_does_not_reread_a_create_whose_answer_was_cut_off(server, client):
    server.queue(Reply(200, b'{"name": "sess', content_length=4096))
    with pytest.raises(errors.MalformedResponseError):
        client.create_session(prompt="once")
    assert len(server.seen) == 1


def test_it_resends_a_create_after_429_and_503(server, client, fake_time):
    server.queue(Reply(429), Reply(503), Reply(200, QUEUED))
    assert client.create_session(prompt="p").state == "QUEUED"
    assert len(server.seen) == 3 and len(fake_time.sleeps) == 2
    assert all(seen.json() == {"prompt": "p"} for seen in server.seen)


def test_it_resends_a_create_when_the_connection_was_refused(fake_time):
    client = JulesClient(
        "k", _refused_url(), sleep=fake_time.sleep, clock=fake_time.clock, max_retries=2
    )
    with pytest.raises(errors.TransientServerError) as failure:
        client.create_session(prompt="p")
    assert failure.value.not_applied and failure.value.status is None
    assert client.request_count == 3 and len(fake_time.sleeps) == 2


def test_it_resends_a_create_after_a_connect_timeout(fake_time):
    http = RaisingHttp(requests.exceptions.ConnectTimeout("timed out"), _refused())
    client = JulesClient(
        "k",
        "https://jules.invalid/v1alpha",
        http=http,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        max_retries=3,
    )
    with pytest.raises(errors.TransientServerError) as failure:
        client.create_session(prompt="p")
    assert failure.value.not_applied
    assert http.calls == 4


def test_it_treats_send_message_like_create(server, client):
    server.queue(Reply(500))
    with pytest.raises(errors.TransientServerError):
        client.send_message("1", "hello")
    assert len(server.seen) == 1
    server.queue(Reply(503), Reply(200, {}))
    client.send_message("1", "hello")
    assert len(server.seen) == 3


def test_it_counts_a_not_found_after_an_ambiguous_delete_as_done(server, client):
    server.queue(Reply(500), Reply(404, spec_examples.NOT_FOUND))
    assert client.delete_session("1") is None
    # After a refusal the first attempt surely did nothing, so a 404 is the real answer.
    server.queue(Reply(503), Reply(404, spec_examples.NOT_FOUND))
    with pytest.raises(errors.NotFoundError):
        client.delete_session("1")


# --- malformed answers -------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, b'{"sessions": [ {"name": '),
        Reply(200, b"<html>oops</html>", content_type="text/html"),
        Reply(200, b"[1, 2]"),
        Reply(200, b'{"sessions": [', content_length=4096),
    ],
)
def test_it_rereads_a_malformed_answer_of_a_read_at_most_twice(server, client, reply):
    server.answer(lambda seen: reply)
    with pytest.raises(errors.MalformedResponseError):
        client.list_sessions()
    assert len(server.seen) == 1 + MALFORMED_RETRIES


def test_it_recovers_from_one_cut_off_body(server, client):
    server.queue(Reply(200, b'{"sessions": [', content_length=4096), Reply(200, {}))
    assert client.list_sessions().items == []


def test_it_does_not_resend_a_write_for_its_malformed_answer(server, client):
    server.answer(lambda seen: Reply(200, b"not json"))
    with pytest.raises(errors.MalformedResponseError):
        client.approve_plan("1")
    assert len(server.seen) == 1


# --- waits -------------------------------------------------------------------------------


def test_it_backs_off_exponentially_up_to_the_cap(server, make_client, fake_time):
    client = make_client(backoff_base=1.0, backoff_cap=8.0, max_retries=6, retry_budget=1000)
    client._random = CeilingRandom()
    server.answer(lambda seen: Reply(500))
    with pytest.raises(errors.TransientServerError):
        client.list_sessions()
    assert fake_time.sleeps == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert len(server.seen) == 7


def test_it_jitters_each_wait_between_zero_and_its_ceiling(server, make_client, fake_time):
    client = make_client(backoff_base=1.0, backoff_cap=8.0, max_retries=40, retry_budget=10_000)
    server.answer(lambda seen: Reply(503))
    with pytest.raises(errors.TransientServerError):
        client.list_sessions()
    ceilings = [min(8.0, 2.0**n) for n in range(40)]
    assert len(fake_time.sleeps) == 40
    assert all(0.0 <= w <= c for w, c in zip(fake_time.sleeps, ceilings, strict=True))
    # Full jitter, not "ceiling plus a little": many waits fall well below the ceiling.
    assert sum(w < c / 2 for w, c in zip(fake_time.sleeps, ceilings, strict=True)) >= 5


def test_it_waits_at_least_the_retry_after_seconds(server, make_client, fake_time):
    client = make_client(backoff_base=0.01, backoff_cap=0.02)
    server.queue(Reply(429, headers={"Retry-After": "7"}), Reply(200, {}))
    client.list_sessions()
    assert fake_time.sleeps == [7.0]


def test_it_waits_until_a_retry_after_date(server, make_client, fake_time):
    client = make_client(backoff_base=0.01, backoff_cap=0.02)
    header = formatdate(time.time() + 20, usegmt=True)
    server.queue(Reply(503, headers={"Retry-After": header}), Reply(200, {}))
    client.list_sessions()
    (wait,) = fake_time.sleeps
    assert 17.0 <= wait <= 20.0


def test_it_keeps_its_own_backoff_when_retry_after_is_shorter(server, make_client, fake_time):
    client = make_client(backoff_base=4.0, backoff_cap=4.0)
    client._random = CeilingRandom()
    server.queue(Reply(429, headers={"Retry-After": "1"}), Reply(200, {}))
    client.list_sessions()
    assert fake_time.sleeps == [4.0]


def test_it_gives_up_when_the_next_wait_would_exceed_the_budget(server, make_client, fake_time):
    client = make_client(backoff_base=1.0, backoff_cap=30.0, retry_budget=10.0, max_retries=50)
    client._random = CeilingRandom()
    server.answer(lambda seen: Reply(503, '{"error": {"code": 503, "status": "UNAVAILABLE"}}'))
    with pytest.raises(errors.TransientServerError) as failure:
        client.list_sessions()
    # 1 + 2 + 4 = 7 s spent; the next wait (8 s) would end past the 10 s budget.
    assert fake_time.sleeps == [1.0, 2.0, 4.0]
    assert failure.value.status == 503 and failure.value.rpc_status == "UNAVAILABLE"


def test_it_counts_time_spent_waiting_for_answers_against_the_budget(server, make_client):
    ticks = iter(range(0, 1000, 4))  # every look at the clock is 4 s later
    client = make_client(
        clock=lambda: float(next(ticks)), backoff_base=0.001, backoff_cap=0.001, retry_budget=10
    )
    server.answer(lambda seen: Reply(500))
    with pytest.raises(errors.TransientServerError):
        client.list_sessions()
    assert len(server.seen) == 3


def test_it_raises_at_once_when_retry_after_exceeds_the_budget(server, make_client, fake_time):
    client = make_client(retry_budget=60.0)
    server.queue(Reply(429, headers={"Retry-After": "120"}), Reply(200, {}))
    with pytest.raises(errors.RateLimitedError) as failure:
        client.list_sessions()
    assert failure.value.retry_after == 120.0
    assert fake_time.sleeps == [] and len(server.seen) == 1


def test_it_stops_after_max_retries(server, make_client, fake_time):
    client = make_client(max_retries=3, retry_budget=1000)
    server.answer(lambda seen: Reply(500))
    with pytest.raises(errors.TransientServerError):
        client.list_sessions()
    assert len(server.seen) == 4 and len(fake_time.sleeps) == 3


def test_it_does_not_retry_at_all_with_max_retries_zero(server, make_client):
    client = make_client(max_retries=0)
    server.answer(lambda seen: Reply(503))
    with pytest.raises(errors.TransientServerError):
        client.list_sessions()
    assert len(server.seen) == 1


def test_it_logs_each_retry_at_warning(server, client, caplog):
    server.queue(Reply(503), Reply(429), Reply(200, {}))
    with caplog.at_level(logging.WARNING, logger="jules"):
        client.list_sessions()
    retries = [r for r in caplog.records if r.name == "jules"]
    assert [r.levelno for r in retries] == [logging.WARNING, logging.WARNING]
    assert "retry 1 of 8" in retries[0].getMessage() and "HTTP 503" in retries[0].getMessage()
    assert "GET sessions" in retries[1].getMessage()


# --- transport failures ------------------------------------------------------------------


def _client_failing_with(failure: Exception, fake_time) -> tuple[JulesClient, RaisingHttp]:
    http = RaisingHttp(failure)
    client = JulesClient(
        "k",
        "https://jules.invalid/v1alpha",
        http=http,  # type: ignore[arg-type]  # a stand-in with the one method used
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        max_retries=2,
    )
    return client, http


@pytest.mark.parametrize(
    ("failure", "cls", "words"),
    [
        (
            requests.exceptions.ConnectionError(
                urllib3.exceptions.ReadTimeoutError(None, "/v1alpha/sessions", "read timed out")  # type: ignore[arg-type]
            ),
            errors.TransientServerError,
            "did not answer within",
        ),
        (requests.exceptions.SSLError("EOF in violation"), errors.TransientServerError, "secure"),
        (
            requests.exceptions.ConnectionError(
                urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104))
            ),
            errors.TransientServerError,
            "broke",
        ),
        (
            requests.exceptions.ChunkedEncodingError(
                urllib3.exceptions.ProtocolError(
                    "Connection broken", urllib3.exceptions.IncompleteRead(10, 4086)
                )
            ),
            errors.MalformedResponseError,
            "cut off",
        ),
        (
            requests.exceptions.ContentDecodingError("bad gzip"),
            errors.MalformedResponseError,
            "cut off",
        ),
    ],
)
def test_it_classifies_transport_failures(fake_time, failure, cls, words):
    client, http = _client_failing_with(failure, fake_time)
    with pytest.raises(cls) as raised:
        client.get_session("1")
    assert words in str(raised.value) and raised.value.status is None
    assert http.calls == 3  # reads retry all of them
    client, http = _client_failing_with(failure, fake_time)
    with pytest.raises(cls):
        client.create_session(prompt="p")
    assert http.calls == 1  # none of them proves the create did not happen


def test_it_does_not_retry_a_request_it_could_not_build(fake_time):
    client, http = _client_failing_with(requests.exceptions.InvalidURL("bad url"), fake_time)
    with pytest.raises(errors.JulesError) as raised:
        client.list_sessions()
    assert not raised.value.retryable and http.calls == 1
