"""One total deadline and a size cap per call, against real misbehaving servers on loopback."""

from __future__ import annotations

import time

import pytest

from jules import errors
from jules.client import JulesClient
from tests.hostile import hostile_server


def _client(url: str, **options: float) -> JulesClient:
    defaults = {"read_timeout": 5.0, "backoff_base": 0.01, "backoff_cap": 0.02}
    return JulesClient("k", url, **{**defaults, **options})  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["drip-body", "drip-headers"])
@pytest.mark.parametrize("environment_once", [False, True])
def test_it_ends_an_answer_that_drips_at_the_total_deadline(mode, environment_once):
    # Each byte comes well within the read timeout, so only a total deadline ends it.
    with hostile_server(mode) as server:
        client = JulesClient(
            "k", server.url, read_timeout=5.0, total_timeout=1.0, environment_once=environment_once
        )
        started = time.monotonic()
        with pytest.raises(errors.DeadlineExceededError) as failure:
            client.list_sources()
        elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 2.5
    assert isinstance(failure.value, TimeoutError)
    assert "1 s" in str(failure.value)
    # The deadline covers the retries too: no second attempt once the time is up.
    assert server.seen == 1


def test_it_still_works_after_a_deadline_ended_an_exchange():
    with hostile_server("drip-body") as server:
        client = _client(server.url, total_timeout=0.5)
        with pytest.raises(errors.DeadlineExceededError):
            client.list_sources()
        server.mode = "ok"
        assert client.list_sources().items == []


def test_it_retries_within_the_deadline_and_not_beyond():
    # A 503 is retried, but the retries stop when the total deadline would pass.
    with hostile_server("huge-error") as server:
        client = _client(server.url, total_timeout=1.0, max_response_bytes=10_000)
        started = time.monotonic()
        with pytest.raises(errors.ResponseTooLargeError):
            client.list_sources()
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("mode", ["huge", "huge-chunked"])
def test_it_refuses_an_answer_larger_than_the_cap(mode):
    with hostile_server(mode) as server:
        client = _client(server.url, max_response_bytes=1024 * 1024)
        started = time.monotonic()
        with pytest.raises(errors.ResponseTooLargeError) as failure:
            client.list_sources()
    assert time.monotonic() - started < 2.0
    assert "1,048,576 bytes" in str(failure.value)
    assert failure.value.status == 200
    assert not failure.value.retryable
    assert server.seen == 1


def test_it_caps_error_bodies_too():
    with hostile_server("huge-error") as server:
        client = _client(server.url, max_response_bytes=100_000, max_retries=0)
        with pytest.raises(errors.ResponseTooLargeError) as failure:
            client.list_sources()
    assert failure.value.status == 500


def test_it_reads_a_normal_answer_on_one_kept_alive_connection():
    with hostile_server("ok") as server:
        client = _client(server.url, total_timeout=2.0)
        for _ in range(5):
            assert client.list_sources().items == []
    assert server.seen == 5


def test_its_defaults_keep_a_deadline_on():
    client = JulesClient("k", "http://127.0.0.1:9", connect_timeout=1, read_timeout=2)
    assert client.total_timeout == 60.0 + 1 + 2
    assert client.max_response_bytes == 64 * 1024 * 1024
