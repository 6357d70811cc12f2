"""The API key never shows in reprs, exceptions, tracebacks, URLs or logs.

docs/jules-api.md#secrets
"""

from __future__ import annotations

import logging
import traceback

import pytest
import requests

from jules import errors
from jules.client import JulesClient
from tests.unit.jules.conftest import API_KEY, Reply


class RaisingHttp:
    def __init__(self, failure: Exception) -> None:
        self.failure = failure

    def request(self, *args, **kwargs):
        raise self.failure


def _everything_about(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error) + str(error.args)


def test_it_redacts_the_key_in_its_repr(client):
    assert API_KEY not in repr(client)
    assert "<redacted>" in repr(client)
    assert API_KEY not in str(vars(client).get("base_url"))


def test_it_keeps_the_key_out_of_urls(server, client):
    client.list_sessions(archived=None)
    client.send_message("1", "hi")
    for seen in server.seen:
        assert API_KEY not in seen.path and API_KEY not in seen.raw_query
        assert API_KEY.encode() not in seen.body


def test_it_scrubs_the_key_from_messages_the_service_echoes(server, client):
    body = (
        '{"error": {"code": 400, "status": "INVALID_ARGUMENT", '
        f'"message": "API key {API_KEY} is not valid for this project."}}}}'
    )
    server.queue(Reply(400, body))
    with pytest.raises(errors.InvalidArgumentError) as failure:
        client.list_sessions()
    assert API_KEY not in _everything_about(failure.value)
    assert "API key <redacted> is not valid" in str(failure.value)


def test_it_keeps_the_key_out_of_retry_logs(server, client, caplog):
    echo = f'{{"error": {{"code": 503, "status": "UNAVAILABLE", "message": "busy for {API_KEY}"}}}}'
    server.queue(Reply(503, echo), Reply(500, echo), Reply(200, {}))
    with caplog.at_level(logging.DEBUG):
        client.list_sessions()
    assert len([r for r in caplog.records if r.name == "jules"]) == 2
    assert API_KEY not in caplog.text
    for record in caplog.records:
        assert API_KEY not in record.getMessage()


def test_it_keeps_the_key_out_of_auth_errors(server, client, caplog):
    server.queue(Reply(401, '{"error": {"code": 401, "status": "UNAUTHENTICATED"}}'))
    with caplog.at_level(logging.DEBUG), pytest.raises(errors.AuthError) as failure:
        client.get_session("1")
    assert API_KEY not in _everything_about(failure.value) and API_KEY not in caplog.text


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ConnectionError(
            f"HTTPSConnectionPool headers={{'X-Goog-Api-Key': '{API_KEY}'}}"
        ),
        requests.exceptions.ReadTimeout(f"Read timed out (key {API_KEY})"),
        requests.exceptions.ChunkedEncodingError(f"IncompleteRead for {API_KEY}"),
        requests.exceptions.InvalidHeader(f"Invalid return character in header value: {API_KEY!r}"),
        requests.exceptions.RequestException(f"something with {API_KEY}"),
    ],
)
def test_it_rewraps_transport_exceptions_without_the_key(failure, fake_time, caplog):
    client = JulesClient(
        API_KEY,
        "https://jules.invalid/v1alpha",
        http=RaisingHttp(failure),
        sleep=fake_time.sleep,
        clock=fake_time.clock,
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(errors.JulesError) as raised:
        client.get_session("1")
    assert API_KEY not in _everything_about(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert API_KEY not in caplog.text


def test_it_refuses_a_key_a_header_cannot_carry_without_echoing_it():
    secret = "AIza-one\nX-Injected: yes"
    with pytest.raises(ValueError) as failure:
        JulesClient(secret)
    assert "AIza-one" not in str(failure.value)
