"""The errors of the Jules API, classified by HTTP status and RPC status only.

Reference: jules-api.md §6. The wording of messages varies across the service, so nothing
here looks at `message`; it is carried for people to read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class JulesError(Exception):
    """Any failure talking to Jules. `str()` is readable and never contains the API key."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        rpc_status: str | None = None,
        reason: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.rpc_status = rpc_status
        self.reason = reason
        self.retry_after = retry_after

    def __str__(self) -> str:
        prefix = f"HTTP {self.status}" if self.status else "Network"
        status = f" {self.rpc_status}" if self.rpc_status else ""
        return f"{prefix}{status}: {self.message}"


class AuthError(JulesError):
    """401: the key is missing, invalid or revoked."""


class PermissionDeniedError(JulesError):
    """403."""


class NotFoundError(JulesError):
    """404: unknown or deleted resource, or activities of a just-created session."""


class InvalidArgumentError(JulesError):
    """400 INVALID_ARGUMENT and any other 400."""


class FailedPreconditionError(InvalidArgumentError):
    """400 FAILED_PRECONDITION: the action is not allowed in the session's state."""


class RateLimitedError(JulesError):
    """429 RESOURCE_EXHAUSTED."""

    retryable = True


class TransientServerError(JulesError):
    """500, 502, 503, 504, connection failures and timeouts (status None)."""

    retryable = True


class MalformedResponseError(JulesError):
    """A 2xx whose body is not the JSON the spec describes (truncated, HTML, wrong shape).

    Retryable: a truncated body is a transport fault, and a re-read usually succeeds.
    """

    retryable = True


RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


def _parse_body(body_text: str) -> Mapping[str, Any]:
    try:
        body = json.loads(body_text) if body_text else {}
    except ValueError:
        return {}
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"]
    return {}


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` as seconds, from either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    import datetime as dt

    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def error_from_response(
    status: int, body_text: str, headers: Mapping[str, str] | None = None
) -> JulesError:
    """Map an HTTP error response to the hierarchy above."""
    error = _parse_body(body_text)
    rpc_status = error.get("status") if isinstance(error.get("status"), str) else None
    message = error.get("message") if isinstance(error.get("message"), str) else ""
    reason = None
    details = error.get("details")
    if isinstance(details, list):
        for detail in details:
            if isinstance(detail, dict) and isinstance(detail.get("reason"), str):
                reason = detail["reason"]
                break
    if not message:
        message = _default_message(status)
    retry_after = parse_retry_after((headers or {}).get("Retry-After"))
    cls: type[JulesError]
    if status == 401:
        cls = AuthError
    elif status == 403:
        cls = PermissionDeniedError
    elif status == 404:
        cls = NotFoundError
    elif status == 400 and rpc_status == "FAILED_PRECONDITION":
        cls = FailedPreconditionError
    elif status == 400:
        cls = InvalidArgumentError
    elif status == 429:
        cls = RateLimitedError
    elif status >= 500:
        cls = TransientServerError if status in RETRYABLE_STATUSES else JulesError
    else:
        cls = JulesError
    return cls(
        message[:500], status=status, rpc_status=rpc_status, reason=reason, retry_after=retry_after
    )


def _default_message(status: int) -> str:
    return {
        400: "The request was not valid.",
        401: "The API key was missing or not accepted.",
        403: "Access denied.",
        404: "Not found.",
        429: "Too many requests.",
        500: "The service had an internal error.",
        502: "Bad gateway.",
        503: "The service is unavailable.",
        504: "The service timed out.",
    }.get(status, f"Unexpected HTTP status {status}.")
