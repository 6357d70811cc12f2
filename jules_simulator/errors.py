"""Google error bodies (docs/jules-api.md#errors) as an exception the HTTP layer renders."""

from __future__ import annotations

from typing import Any

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
# The usual Google wording for each status, used when nothing more specific is known.
STATUS_MESSAGES = {
    400: "Request contains an invalid argument.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: "Resource has been exhausted (e.g. check quota).",
    500: "Internal error encountered.",
    503: "The service is currently unavailable.",
    504: "The request timed out. Please try again.",
}


class SimError(Exception):
    """An error answered with the standard envelope `{"error": {code, message, status}}`."""

    def __init__(
        self,
        code: int,
        status: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.details = details or []
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def for_status(code: int, message: str | None = None) -> SimError:
    return SimError(
        code,
        STATUS_NAMES.get(code, "UNKNOWN"),
        message or STATUS_MESSAGES.get(code, "Unknown error."),
    )


def not_found(message: str = "Requested entity was not found.") -> SimError:
    return SimError(404, "NOT_FOUND", message)


def invalid(message: str, field: str | None = None) -> SimError:
    """400 INVALID_ARGUMENT; with `field`, the BadRequest detail Google front ends add."""
    details = None
    if field is not None:
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": message}],
            }
        ]
    return SimError(400, "INVALID_ARGUMENT", message, details)


def failed_precondition(message: str) -> SimError:
    return SimError(400, "FAILED_PRECONDITION", message)


def error_info(reason: str, domain: str = "googleapis.com", **metadata: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": domain,
    }
    if metadata:
        info["metadata"] = dict(metadata)
    return info


# The live service's exact answer to a request without a key: docs/jules-api.md#authentication
MISSING_KEY_BODY: dict[str, Any] = {
    "error": {
        "code": 401,
        "message": (
            "Request is missing required authentication credential. Expected OAuth 2 access "
            "token, login cookie or other valid authentication credential."
        ),
        "status": "UNAUTHENTICATED",
        "details": [error_info("CREDENTIALS_MISSING")],
    }
}


def bad_key() -> SimError:
    """An unknown or revoked key, in the live service's misleading wording."""
    return SimError(
        401,
        "UNAUTHENTICATED",
        "API keys are not supported by this API. Expected OAuth2 access token or other "
        "authentication credentials that assert a principal.",
        [error_info("API_KEY_INVALID", service="jules.googleapis.com")],
    )
