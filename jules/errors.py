"""The errors of the Jules API, classified by HTTP status and RPC status only.

The wording of messages varies, so `message` is for people and never decides a class:
docs/jules-api.md#errors and docs/jules-api.md#error-classes.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

# Worth another attempt; 501 and other 5xx are not: docs/jules-api.md#retries
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

# Refusals before any work, so even create may be resent after them:
# docs/jules-api.md#non-idempotent-calls
NOT_APPLIED_STATUSES = frozenset({429, 503})

# Long gateway pages say nothing useful past this; it also bounds what lands in logs.
MAX_MESSAGE_CHARS = 500


class JulesError(Exception):
    """Any failure talking to Jules.

    `status` is the HTTP status (None for network failures), `rpc_status` the Google RPC
    status name (`"NOT_FOUND"`), `reason` the `ErrorInfo` reason from `details`
    (`"CREDENTIALS_MISSING"`), `retry_after` the server's `Retry-After` in seconds.
    `str()` is a sentence a person understands; it never contains the API key.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        rpc_status: str | None = None,
        reason: str | None = None,
        retry_after: float | None = None,
        unsent: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.rpc_status = rpc_status
        self.reason = reason
        self.retry_after = retry_after
        # True only when the request provably never reached the service (a refused
        # connection, a connect timeout); see `not_applied`.
        self.unsent = unsent

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed if sent again later."""
        return False

    @property
    def not_applied(self) -> bool:
        """True when the request surely did not take effect, so even a non-idempotent
        call (create, sendMessage) can be resent without risking a duplicate."""
        if self.status is None:
            return self.unsent
        return self.status in NOT_APPLIED_STATUSES

    def __str__(self) -> str:
        if self.status is None:
            return self.message
        label = f"HTTP {self.status}"
        if self.rpc_status:
            label += f" {self.rpc_status}"
        return f"{self.message} ({label})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status!r}, rpc_status={self.rpc_status!r})"


class AuthError(JulesError):
    """401 UNAUTHENTICATED: the key is missing, invalid or revoked."""


class PermissionDeniedError(JulesError):
    """403 PERMISSION_DENIED."""


class NotFoundError(JulesError):
    """404: an unknown or deleted resource, a wrong path, or (transiently) the activities
    of a session created a moment ago."""


class InvalidArgumentError(JulesError):
    """400 INVALID_ARGUMENT, and any 400 that does not name FAILED_PRECONDITION."""


class FailedPreconditionError(JulesError):
    """400 FAILED_PRECONDITION: the action is not allowed in the session's current state."""


class RateLimitedError(JulesError):
    """429 RESOURCE_EXHAUSTED: a rate or quota limit."""

    @property
    def retryable(self) -> bool:
        return True


class TransientServerError(JulesError):
    """500, 502, 503, 504, and network failures (connection errors and timeouts), for
    which `status` is None."""

    @property
    def retryable(self) -> bool:
        return True


class DeadlineExceededError(TransientServerError, TimeoutError):
    """The exchange outlasted the client's total deadline (connect, send and every read
    together), however steadily the server kept sending: docs/reliability.md#remote-deadline

    Retryable later (by the outbox, the next sync), but not within the same call, whose
    time is up. The request may have reached the service."""


class ResponseTooLargeError(JulesError):
    """The answer was larger than the client's size cap; it was not read to the end."""


class MalformedResponseError(JulesError):
    """A 2xx whose body is not JSON, is cut off, or is not the expected shape.

    Retryable, for reads only and at most twice: docs/jules-api.md#malformed-responses
    """

    @property
    def retryable(self) -> bool:
        return True


_DEFAULT_MESSAGES = {
    400: "Jules rejected the request as invalid.",
    401: "Jules did not accept the API key (missing, invalid or revoked).",
    403: "Jules denied access.",
    404: "Jules does not know this resource.",
    429: "Jules is limiting the rate of requests.",
    500: "Jules had an internal error.",
    502: "A gateway in front of Jules failed.",
    503: "Jules is temporarily unavailable.",
    504: "Jules timed out.",
}


def error_from_response(
    status: int,
    body_text: str,
    headers: Mapping[str, str] | None = None,
    *,
    now: Callable[[], float] = time.time,
) -> JulesError:
    """Map a non-2xx response to the hierarchy above.

    Bodies may be the Google error envelope, HTML from a gateway, plain text or nothing;
    only the HTTP status and `error.status` pick the class.
    """
    envelope = _error_envelope(body_text)
    rpc_status = _str_or_none(envelope.get("status"))
    message = _str_or_none(envelope.get("message")) or _fallback_message(status, body_text)
    cls = _class_for(status, rpc_status)
    return cls(
        _clip(message),
        status=status,
        rpc_status=rpc_status,
        reason=_error_info_reason(envelope.get("details")),
        retry_after=parse_retry_after(_header(headers, "Retry-After"), now=now),
    )


def _class_for(status: int, rpc_status: str | None) -> type[JulesError]:
    if status == 400:
        if rpc_status == "FAILED_PRECONDITION":
            return FailedPreconditionError
        return InvalidArgumentError
    if status == 401:
        return AuthError
    if status == 403:
        return PermissionDeniedError
    if status == 404:
        return NotFoundError
    if status == 429:
        return RateLimitedError
    if status in RETRYABLE_STATUSES:
        return TransientServerError
    return JulesError


def _error_envelope(body_text: str) -> Mapping[str, Any]:
    if not body_text or body_text.lstrip()[:1] != "{":
        return {}
    try:
        body = json.loads(body_text)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to read
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _error_info_reason(details: Any) -> str | None:
    """The `reason` of the `google.rpc.ErrorInfo` entry, else of any entry that has one."""
    if not isinstance(details, list):
        return None
    fallback = None
    for detail in details:
        if not isinstance(detail, dict):
            continue
        reason = _str_or_none(detail.get("reason"))
        if reason is None:
            continue
        if str(detail.get("@type", "")).endswith("google.rpc.ErrorInfo"):
            return reason
        fallback = fallback or reason
    return fallback


def _fallback_message(status: int, body_text: str) -> str:
    """A readable message when the body is not the Google envelope.

    Short plain text (`Not Found`) is worth showing; HTML pages from gateways are not.
    """
    default = _DEFAULT_MESSAGES.get(status, f"Jules answered with HTTP status {status}.")
    text = " ".join(body_text.split()) if body_text else ""
    looks_like_prose = text.isprintable() and "<" not in text and text[:1] not in ("{", "[")
    if text and len(text) <= 200 and looks_like_prose:
        return f"{default} The service said: {text}"
    return default


def _clip(message: str) -> str:
    # U+0000 cannot be stored in PostgreSQL text (the sync keeps the last error).
    message = message.replace("\x00", "\ufffd")
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[: MAX_MESSAGE_CHARS - 1] + "…"


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """Header lookup that is case-insensitive even for a plain dict."""
    if not headers:
        return None
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """`Retry-After` in seconds from now, from delta-seconds or an HTTP date (RFC 9110).

    Unreadable values give None rather than an error: the header is advice, and a bad one
    must not turn a retryable failure into a crash.
    """
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    # An HTTP date is always GMT; a naive result means the zone was "-0000" or absent.
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    timestamp = when.timestamp()
    return max(0.0, timestamp - now())
