"""Error classification by HTTP status and RPC status only (docs/jules-api.md#error-classes)."""

from __future__ import annotations

import json
from email.utils import formatdate

import pytest

from jules import errors
from jules.errors import error_from_response, parse_retry_after
from tests.unit.jules import spec_examples

INVALID_KEY_BODY = json.dumps(
    {
        "error": {
            "code": 401,
            "message": (
                "API keys are not supported by this API. Expected OAuth2 access token or other "
                "authentication credentials that assert a principal."
            ),
            "status": "UNAUTHENTICATED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "jules.googleapis.com"},
                }
            ],
        }
    }
)


def _envelope(code: int, status: str, message: str = "m") -> str:
    return json.dumps({"error": {"code": code, "message": message, "status": status}})


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (400, _envelope(400, "INVALID_ARGUMENT"), errors.InvalidArgumentError),
        (400, _envelope(400, "FAILED_PRECONDITION"), errors.FailedPreconditionError),
        (400, _envelope(400, "OUT_OF_RANGE"), errors.InvalidArgumentError),
        (400, "", errors.InvalidArgumentError),
        (401, _envelope(401, "UNAUTHENTICATED"), errors.AuthError),
        (403, _envelope(403, "PERMISSION_DENIED"), errors.PermissionDeniedError),
        (404, _envelope(404, "NOT_FOUND"), errors.NotFoundError),
        (429, _envelope(429, "RESOURCE_EXHAUSTED"), errors.RateLimitedError),
        (500, _envelope(500, "INTERNAL"), errors.TransientServerError),
        (502, "<html><body>502 Bad Gateway</body></html>", errors.TransientServerError),
        (503, _envelope(503, "UNAVAILABLE"), errors.TransientServerError),
        (504, _envelope(504, "DEADLINE_EXCEEDED"), errors.TransientServerError),
        (501, _envelope(501, "UNIMPLEMENTED"), errors.JulesError),
        (409, _envelope(409, "ABORTED"), errors.JulesError),
        (302, "", errors.JulesError),
    ],
)
def test_it_maps_every_status_to_its_class(status, body, cls):
    error = error_from_response(status, body, {})
    assert type(error) is cls
    assert error.status == status
    assert isinstance(error, errors.JulesError)


@pytest.mark.parametrize(
    ("cls", "retryable"),
    [
        (errors.AuthError, False),
        (errors.PermissionDeniedError, False),
        (errors.NotFoundError, False),
        (errors.InvalidArgumentError, False),
        (errors.FailedPreconditionError, False),
        (errors.RateLimitedError, True),
        (errors.TransientServerError, True),
        (errors.MalformedResponseError, True),
        (errors.JulesError, False),
    ],
)
def test_it_says_which_errors_are_retryable(cls, retryable):
    assert cls("x", status=418).retryable is retryable


def test_it_classifies_by_status_never_by_wording():
    # A 400 that says "not found" is still an invalid argument, and a 404 with an odd
    # message is still not found.
    wrong_words = error_from_response(400, _envelope(400, "INVALID_ARGUMENT", "Session not found"))
    assert type(wrong_words) is errors.InvalidArgumentError
    odd = error_from_response(404, _envelope(404, "NOT_FOUND", "Session is not active."))
    assert type(odd) is errors.NotFoundError
    # FAILED_PRECONDITION is read from error.status, whatever the message.
    precondition = error_from_response(400, _envelope(400, "FAILED_PRECONDITION", "Oops"))
    assert type(precondition) is errors.FailedPreconditionError
    assert not isinstance(precondition, errors.InvalidArgumentError)


def test_it_reads_the_exact_missing_key_body_of_the_spec():
    error = error_from_response(401, spec_examples.MISSING_KEY)
    assert type(error) is errors.AuthError
    assert error.rpc_status == "UNAUTHENTICATED"
    assert error.reason == "CREDENTIALS_MISSING"
    assert error.message.startswith("Request is missing required authentication credential.")
    assert str(error).endswith("(HTTP 401 UNAUTHENTICATED)")


def test_it_reads_the_invalid_key_body_with_metadata():
    error = error_from_response(401, INVALID_KEY_BODY)
    assert type(error) is errors.AuthError and error.reason == "API_KEY_INVALID"
    assert error.message.startswith("API keys are not supported by this API")


def test_it_reads_the_spec_not_found_body():
    error = error_from_response(404, spec_examples.NOT_FOUND)
    assert type(error) is errors.NotFoundError
    assert (error.message, error.rpc_status, error.reason) == (
        "Requested entity was not found.",
        "NOT_FOUND",
        None,
    )
    assert str(error) == "Requested entity was not found. (HTTP 404 NOT_FOUND)"


def test_it_prefers_the_error_info_reason_among_details():
    body = json.dumps(
        {
            "error": {
                "code": 429,
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    "junk",
                    {"@type": "type.googleapis.com/google.rpc.Help", "reason": "NOT_THIS"},
                    {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "QUOTA"},
                ],
            }
        }
    )
    assert error_from_response(429, body).reason == "QUOTA"


@pytest.mark.parametrize(
    "body",
    [
        "<html><head><title>502</title></head><body>Bad Gateway" + "x" * 5000 + "</body></html>",
        "{not json",
        '["error"]',
        '{"error": "a string"}',
        '{"error": {"status": 7, "message": ["x"], "details": "no"}}',
        "\x00\x01binary",
    ],
)
def test_it_tolerates_bodies_that_are_not_the_envelope(body):
    error = error_from_response(502, body)
    assert type(error) is errors.TransientServerError
    assert error.rpc_status is None and error.reason is None
    assert error.message == "A gateway in front of Jules failed."
    assert "<" not in str(error)


def test_it_shows_short_plain_text_bodies():
    error = error_from_response(404, "Not Found\n")
    assert type(error) is errors.NotFoundError
    assert error.message == "Jules does not know this resource. The service said: Not Found"


def test_it_clips_long_messages():
    error = error_from_response(400, _envelope(400, "INVALID_ARGUMENT", "y" * 5000))
    assert len(error.message) == errors.MAX_MESSAGE_CHARS


def test_it_reads_retry_after_seconds_from_any_header_case():
    assert error_from_response(429, "", {"Retry-After": "7"}).retry_after == 7.0
    assert error_from_response(503, "", {"retry-after": "2.5"}).retry_after == 2.5
    assert error_from_response(429, "", {}).retry_after is None


def test_it_reads_retry_after_as_an_http_date():
    now = 1_780_000_000.0
    header = formatdate(now + 42, usegmt=True)
    assert parse_retry_after(header, now=lambda: now) == pytest.approx(42.0)
    error = error_from_response(429, "", {"Retry-After": header}, now=lambda: now)
    assert error.retry_after == pytest.approx(42.0)
    # A date in the past means "now", never a negative wait.
    assert parse_retry_after(formatdate(now - 60, usegmt=True), now=lambda: now) == 0.0


@pytest.mark.parametrize("value", ["", None, "soon", "nan", "inf", "Mon, 99 Foo 2026"])
def test_it_ignores_unreadable_retry_after(value):
    assert parse_retry_after(value) is None


def test_it_clamps_a_negative_retry_after_to_zero():
    assert parse_retry_after("-5") == 0.0


def test_it_knows_which_failures_surely_did_not_take_effect():
    assert error_from_response(429, "").not_applied
    assert error_from_response(503, "").not_applied
    for status in (500, 502, 504):
        assert not error_from_response(status, "").not_applied
    assert errors.TransientServerError("refused", unsent=True).not_applied
    assert not errors.TransientServerError("read timeout").not_applied
    assert not errors.MalformedResponseError("cut off", status=200).not_applied


def test_it_words_network_errors_without_a_status():
    error = errors.TransientServerError("Could not connect to Jules.")
    assert error.status is None and str(error) == "Could not connect to Jules."
    assert "TransientServerError" in repr(error)
